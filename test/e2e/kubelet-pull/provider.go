package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/kubernetes/pkg/credentialprovider"
	"k8s.io/kubernetes/pkg/credentialprovider/plugin"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/kubelet/token"
)

// providerFlags are the kubelet's own flags for image credential provider plugins (KEP-2133), and the feature gate
// that passes them the Pod's ServiceAccount token (KEP-4412).
type providerFlags struct {
	config   string
	binDir   string
	saTokens bool
}

func (f *providerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "image-credential-provider-config", "", "CredentialProviderConfig file, as the kubelet's flag")
	fs.StringVar(&f.binDir, "image-credential-provider-bin-dir", "", "plugin directory, as the kubelet's flag")
	fs.BoolVar(&f.saTokens, "service-account-tokens", false, "enable the feature gate KubeletServiceAccountTokenForCredentialProviders")
}

func (f *providerFlags) set() bool { return f.config != "" || f.binDir != "" }

// registerProviders does what the kubelet does at start (kuberuntime.NewKubeGenericRuntimeManager): validate the
// CredentialProviderConfig and register each plugin found in the bin directory. With saTokens, the feature gate
// KubeletServiceAccountTokenForCredentialProviders is on and, as in the kubelet, ServiceAccounts are read from the
// API server and their tokens come from the kubelet's token manager (TokenRequest, bound to the Pod).
func registerProviders(f providerFlags, core kubernetes.Interface) error {
	if !f.set() {
		return nil
	}
	if f.config == "" || f.binDir == "" {
		return fmt.Errorf("--image-credential-provider-config and --image-credential-provider-bin-dir go together")
	}
	var getToken func(namespace, name string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
	var getSA plugin.GetServiceAccountFunc
	if f.saTokens {
		if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{string(features.KubeletServiceAccountTokenForCredentialProviders): true}); err != nil {
			return err
		}
		getToken = token.NewManager(core).GetServiceAccountToken
		getSA = func(namespace, name string) (*v1.ServiceAccount, error) {
			return core.CoreV1().ServiceAccounts(namespace).Get(context.Background(), name, metav1.GetOptions{})
		}
	}
	return plugin.RegisterCredentialProviderPlugins(f.config, f.binDir, getToken, getSA)
}

// nodeKeyring is the kubelet image manager's keyring next to the pull Secrets: the node's own (empty here: no
// docker config files are read from this machine) unioned with the external credential providers for this Pod.
// The Pod's namespace, name and UID reach the plugins only with the feature gate on, as in
// imageManager.EnsureImageExists; the ServiceAccount name always does.
func nodeKeyring(t *pullTarget) credentialprovider.DockerKeyring {
	var ns, name, uid string
	if utilfeature.DefaultFeatureGate.Enabled(features.KubeletServiceAccountTokenForCredentialProviders) {
		ns, name, uid = t.Namespace, t.Name, t.UID
	}
	return credentialprovider.UnionDockerKeyring{
		credentialprovider.UnionDockerKeyring{},
		plugin.NewExternalCredentialProviderDockerKeyring(ns, name, uid, t.ServiceAccount),
	}
}

// providerCounters reads the kubelet's credential provider metrics: plugin executions (the duration histogram's
// count) and failures so far.
func providerCounters() (execs, errs float64) {
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		return -1, -1
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case strings.HasSuffix(f.GetName(), "credential_provider_plugin_duration") && m.GetHistogram() != nil:
				execs += float64(m.GetHistogram().GetSampleCount())
			case strings.HasSuffix(f.GetName(), "credential_provider_plugin_errors") && m.GetCounter() != nil:
				errs += m.GetCounter().GetValue()
			}
		}
	}
	return execs, errs
}
