// kubelet-pull pulls the images of a Pod (or an ECI ImageCache) the way a node would: it reads the object's
// imagePullSecrets from the API server, builds the kubelet's keyring from them with the kubelet's own code
// (k8s.io/kubernetes/pkg/credentialprovider), looks up credentials for each image as the kubelet does, and pulls
// manifest and layers with go-containerregistry, trying the matching credentials in order like the kubelet's
// runtime manager. With the kubelet's --image-credential-provider-config and --image-credential-provider-bin-dir
// flags, the node's keyring also holds the kubelet's external credential provider plugins
// (k8s.io/kubernetes/pkg/credentialprovider/plugin), executed for the Pod as the kubelet executes them; with
// --service-account-tokens they get the Pod's ServiceAccount token (KEP-4412). Registry host names (ACR public, VPC and custom domains, the token realm) are dialed to loopback
// addresses given with --resolve; nothing else is reachable. It also pushes random test images (push).
//
// Output: one JSON document on stdout. Exit 0 when every image was pulled (or pushed), 1 when one failed, 2 on
// bad usage or an unreadable object.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/kubernetes/pkg/credentialprovider"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type common struct {
	ca      string
	resolve stringList
	timeout time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.ca, "ca", "", "PEM file of the CA that signed the registry and token service certificates")
	fs.Var(&c.resolve, "resolve", "host=127.0.0.1:port: dial this registry or realm host name here (repeatable)")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "overall deadline")
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  kubelet-pull pull --kubeconfig FILE (--pod NAMESPACE/NAME | --imagecache NAME) --ca FILE --resolve HOST=ADDR...
       [--image-credential-provider-config FILE --image-credential-provider-bin-dir DIR [--service-account-tokens]]
  kubelet-pull push --image REF --username USER --password-env VAR --ca FILE --resolve HOST=ADDR... [--layers N]`)
}

func emit(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func fail(code int, format string, args ...any) {
	emit(map[string]any{"ok": false, "error": fmt.Sprintf(format, args...)})
	os.Exit(code)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pull":
		os.Exit(runPull(os.Args[2:]))
	case "push":
		os.Exit(runPush(os.Args[2:]))
	default:
		usage()
		os.Exit(2)
	}
}

func runPull(args []string) int {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	var c common
	c.register(fs)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
	pod := fs.String("pod", "", "NAMESPACE/NAME of the Pod whose containers to pull")
	imageCache := fs.String("imagecache", "", "name of the ImageCache (eci.alibabacloud.com/v1) whose images to pull")
	var providers providerFlags
	providers.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*pod == "") == (*imageCache == "") {
		fail(2, "exactly one of --pod and --imagecache is required")
	}
	if providers.set() && *imageCache != "" {
		fail(2, "credential provider plugins are the kubelet's: they pull for --pod only (ECI pulls ImageCaches itself)")
	}
	tr, err := newTransport(c.ca, c.resolve)
	if err != nil {
		fail(2, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	api, err := newAPI(*kubeconfig)
	if err != nil {
		fail(2, "%v", err)
	}
	var target *pullTarget
	if *pod != "" {
		target, err = api.podTarget(ctx, *pod)
	} else {
		target, err = api.imageCacheTarget(ctx, *imageCache)
	}
	if err != nil {
		fail(2, "%v", err)
	}
	if err := registerProviders(providers, api.core); err != nil {
		fail(2, "credential providers: %v", err)
	}
	var node credentialprovider.DockerKeyring
	if providers.set() {
		node = nodeKeyring(target)
	}
	report, err := pullAll(ctx, target, tr, node)
	if err != nil {
		fail(2, "%v", err)
	}
	if providers.set() {
		execs, errs := providerCounters()
		report.Providers = &providerStats{Execs: execs, Errors: errs}
	}
	emit(report)
	if !report.OK {
		return 1
	}
	return 0
}

func runPush(args []string) int {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	var c common
	c.register(fs)
	image := fs.String("image", "", "reference to push to, e.g. demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1")
	username := fs.String("username", "cr_temp_user", "registry user name")
	passwordEnv := fs.String("password-env", "REGISTRY_PASSWORD", "environment variable holding the password (kept off the command line)")
	layers := fs.Int("layers", 2, "number of random layers")
	layerSize := fs.Int64("layer-size", 4096, "bytes per random layer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *image == "" {
		fail(2, "--image is required")
	}
	tr, err := newTransport(c.ca, c.resolve)
	if err != nil {
		fail(2, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, err := pushRandom(ctx, tr, *image, *username, os.Getenv(*passwordEnv), *layers, *layerSize)
	if err != nil {
		emit(map[string]any{"ok": false, "image": *image, "error": err.Error()})
		return 1
	}
	emit(res)
	return 0
}
