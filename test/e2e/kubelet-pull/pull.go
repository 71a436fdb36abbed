package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kubernetes/pkg/credentialprovider"
	credentialprovidersecrets "k8s.io/kubernetes/pkg/credentialprovider/secrets"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/util/parsers"
)

func init() {
	// The keyring records which Secret a credential came from only with this gate on (as on a node that enables
	// it); matching and order are the same either way. We need the source to report which Secret pulled.
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{string(features.KubeletEnsureSecretPulledImages): true}); err != nil {
		panic(err)
	}
}

type attempt struct {
	// Secret is NAMESPACE/NAME of the Secret the credential came from; empty for an anonymous pull.
	Secret   string `json:"secret,omitempty"`
	Username string `json:"username,omitempty"`
	Error    string `json:"error,omitempty"`
	// Status is the HTTP status of the registry or token-service answer that failed the pull, when there was one.
	Status int `json:"status,omitempty"`
	// Node: the credential came from the node's keyring (here: the kubelet's credential provider plugins), not
	// from a pull Secret.
	Node bool `json:"node,omitempty"`
}

type imageResult struct {
	Container string `json:"container,omitempty"`
	Image     string `json:"image"`
	// Repository is what the kubelet looks credentials up for (parsers.ParseImageName's repoToPull).
	Repository string `json:"repository"`
	OK         bool   `json:"ok"`
	Digest     string `json:"digest,omitempty"`
	Layers     int    `json:"layers,omitempty"`
	LayerBytes int64  `json:"layerBytes,omitempty"`
	// Credential is the attempt that pulled; Attempts are all of them in the kubelet's order.
	Credential *attempt  `json:"credential,omitempty"`
	Attempts   []attempt `json:"attempts"`
	Error      string    `json:"error,omitempty"`
}

type report struct {
	Object string `json:"object"`
	OK     bool   `json:"ok"`
	// Secrets are the pull Secrets read (NAMESPACE/NAME), Missing the references that could not be read.
	Secrets []string      `json:"secrets"`
	Missing []string      `json:"missing,omitempty"`
	Images  []imageResult `json:"images"`
	// Providers: the kubelet's counters of credential provider plugin executions and failures, when plugins are
	// configured.
	Providers *providerStats `json:"providers,omitempty"`
}

type providerStats struct {
	Execs  float64 `json:"execs"`
	Errors float64 `json:"errors"`
}

// pullAll pulls every image of the target. node is the node's keyring (nil: none, no credential provider plugins).
func pullAll(ctx context.Context, t *pullTarget, tr http.RoundTripper, node credentialprovider.DockerKeyring) (*report, error) {
	r := &report{Object: t.Object, OK: true, Secrets: []string{}, Missing: t.Missing}
	for _, s := range t.Secrets {
		r.Secrets = append(r.Secrets, s.Namespace+"/"+s.Name)
	}
	if node == nil {
		node = credentialprovider.UnionDockerKeyring{}
	}
	// As in the kubelet's image manager: the Pod's Secrets unioned with the node's keyring.
	keyring, err := credentialprovidersecrets.MakeDockerKeyring(t.Secrets, node)
	for _, img := range t.Images {
		res := imageResult{Container: img.Container, Image: img.Image, Attempts: []attempt{}}
		if err != nil {
			res.Error = fmt.Sprintf("reading the pull Secrets: %v", err)
		} else {
			pullImageLikeKubelet(ctx, keyring, tr, &res)
		}
		r.OK = r.OK && res.OK
		r.Images = append(r.Images, res)
	}
	return r, nil
}

// pullImageLikeKubelet follows kubelet's image manager (parsers.ParseImageName, keyring.Lookup) and
// kubeGenericRuntimeManager.PullImage: no credential means one anonymous pull; otherwise each credential in order
// until one succeeds, failing with all errors.
func pullImageLikeKubelet(ctx context.Context, keyring credentialprovider.DockerKeyring, tr http.RoundTripper, res *imageResult) {
	repoToPull, _, _, err := parsers.ParseImageName(res.Image)
	if err != nil {
		res.Error = err.Error()
		return
	}
	res.Repository = repoToPull
	creds, _ := keyring.Lookup(repoToPull)
	if len(creds) == 0 {
		a := attempt{}
		pullOnce(ctx, tr, res, authn.Anonymous, &a)
		return
	}
	for _, c := range creds {
		a := attempt{Username: c.Username}
		if c.Source != nil {
			a.Secret = c.Source.Secret.Namespace + "/" + c.Source.Secret.Name
		} else {
			a.Node = true
		}
		// The CRI AuthConfig the kubelet sends, read the way container runtimes read it.
		auth := authn.FromConfig(authn.AuthConfig{
			Username:      c.Username,
			Password:      c.Password,
			Auth:          c.Auth,
			IdentityToken: c.IdentityToken,
			RegistryToken: c.RegistryToken,
		})
		if pullOnce(ctx, tr, res, auth, &a) {
			return
		}
	}
}

func pullOnce(ctx context.Context, tr http.RoundTripper, res *imageResult, auth authn.Authenticator, a *attempt) bool {
	digest, layers, size, err := fetchImage(ctx, tr, res.Image, auth)
	if err != nil {
		a.Error = err.Error()
		var terr *transport.Error
		if errors.As(err, &terr) {
			a.Status = terr.StatusCode
		}
		res.Attempts = append(res.Attempts, *a)
		res.Error = a.Error
		return false
	}
	res.Attempts = append(res.Attempts, *a)
	res.OK, res.Error = true, ""
	res.Digest, res.Layers, res.LayerBytes = digest, layers, size
	res.Credential = a
	return true
}

// fetchImage pulls the manifest, the config and every layer, reading each blob to its end so that
// go-containerregistry checks its digest and size.
func fetchImage(ctx context.Context, tr http.RoundTripper, image string, auth authn.Authenticator) (string, int, int64, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", 0, 0, err
	}
	img, err := remote.Image(ref, remote.WithAuth(auth), remote.WithTransport(tr), remote.WithContext(ctx))
	if err != nil {
		return "", 0, 0, err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", 0, 0, err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return "", 0, 0, fmt.Errorf("config blob: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return "", 0, 0, err
	}
	var total int64
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return "", 0, 0, fmt.Errorf("layer %d: %w", i, err)
		}
		n, err := io.Copy(io.Discard, rc)
		closeErr := rc.Close()
		if err == nil {
			err = closeErr
		}
		if err != nil {
			return "", 0, 0, fmt.Errorf("layer %d: %w", i, err)
		}
		total += n
	}
	return digest.String(), len(layers), total, nil
}

func pushRandom(ctx context.Context, tr http.RoundTripper, image, username, password string, layers int, layerSize int64) (map[string]any, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, err
	}
	img, err := random.Image(layerSize, int64(layers))
	if err != nil {
		return nil, err
	}
	auth := &authn.Basic{Username: username, Password: password}
	if err := remote.Write(ref, img, remote.WithAuth(auth), remote.WithTransport(tr), remote.WithContext(ctx)); err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return map[string]any{"ok": true, "image": image, "digest": digest.String()}, nil
}
