// Command credprov-harness asks the kubelet's own image credential provider machinery
// (k8s.io/kubernetes/pkg/credentialprovider/plugin, as kubelet v1.33 runs it) for the credentials of images,
// the way the kubelet's image manager does before a pull:
//
//   - RegisterCredentialProviderPlugins loads and validates a CredentialProviderConfig (kubelet.config.k8s.io/v1)
//     and registers each plugin found in the bin directory;
//   - NewExternalCredentialProviderDockerKeyring(pod namespace, name, UID, service account).Lookup(image) runs
//     the plugin (or answers from the kubelet's in-memory cache, per the plugin's cacheKeyType/cacheDuration).
//
// With --service-account-tokens the feature gate KubeletServiceAccountTokenForCredentialProviders (alpha in
// 1.33) is enabled and, as in the kubelet, ServiceAccounts are read from the API server and their tokens come
// from the kubelet's token manager (TokenRequest, bound to the Pod).
//
// Input on stdin: {"steps":[{"image":"...","pod":{"namespace","name","uid","serviceAccount"},"sleepMs":0}]}
// Output on stdout: {"results":[{"image","auth":[{"username","password"}],"found","execs","errors"}]}, where
// execs and errors are the kubelet's own counters of plugin executions and failures so far. The kubelet's
// log (klog) goes to stderr.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/credentialprovider/plugin"
	"k8s.io/kubernetes/pkg/kubelet/token"
)

type pod struct {
	Namespace      string `json:"namespace"`
	Name           string `json:"name"`
	UID            string `json:"uid"`
	ServiceAccount string `json:"serviceAccount"`
}

type step struct {
	Image   string `json:"image"`
	Pod     pod    `json:"pod"`
	SleepMs int    `json:"sleepMs"`
}

type auth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type result struct {
	Image  string  `json:"image"`
	Found  bool    `json:"found"`
	Auth   []auth  `json:"auth"`
	Execs  float64 `json:"execs"`
	Errors float64 `json:"errors"`
}

func main() {
	config := flag.String("config", "", "CredentialProviderConfig file (kubelet --image-credential-provider-config)")
	binDir := flag.String("bin-dir", "", "plugin directory (kubelet --image-credential-provider-bin-dir)")
	kubeconfig := flag.String("kubeconfig", "", "API server for ServiceAccounts and TokenRequest (with --service-account-tokens)")
	saTokens := flag.Bool("service-account-tokens", false, "enable the KubeletServiceAccountTokenForCredentialProviders feature gate")
	klog.InitFlags(nil)
	flag.Parse()
	if err := run(*config, *binDir, *kubeconfig, *saTokens); err != nil {
		fmt.Fprintf(os.Stderr, "credprov-harness: %v\n", err)
		os.Exit(1)
	}
}

func run(config, binDir, kubeconfig string, saTokens bool) error {
	if config == "" || binDir == "" {
		return fmt.Errorf("--config and --bin-dir are required")
	}
	var steps struct {
		Steps []step `json:"steps"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&steps); err != nil {
		return fmt.Errorf("reading steps from stdin: %w", err)
	}

	var getToken func(namespace, name string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
	var getSA plugin.GetServiceAccountFunc
	if saTokens {
		if err := utilfeature.DefaultMutableFeatureGate.Set("KubeletServiceAccountTokenForCredentialProviders=true"); err != nil {
			return err
		}
		if kubeconfig == "" {
			return fmt.Errorf("--service-account-tokens needs --kubeconfig")
		}
		restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return err
		}
		client, err := kubernetes.NewForConfig(restConfig)
		if err != nil {
			return err
		}
		// The kubelet's own token manager: TokenRequest for the Pod's ServiceAccount, bound to the Pod, cached.
		getToken = token.NewManager(client).GetServiceAccountToken
		getSA = func(namespace, name string) (*v1.ServiceAccount, error) {
			return client.CoreV1().ServiceAccounts(namespace).Get(context.Background(), name, metav1.GetOptions{})
		}
	}
	if err := plugin.RegisterCredentialProviderPlugins(config, binDir, getToken, getSA); err != nil {
		return err
	}

	var results []result
	for _, s := range steps.Steps {
		if s.SleepMs > 0 {
			time.Sleep(time.Duration(s.SleepMs) * time.Millisecond)
		}
		keyring := plugin.NewExternalCredentialProviderDockerKeyring(s.Pod.Namespace, s.Pod.Name, s.Pod.UID, s.Pod.ServiceAccount)
		creds, found := keyring.Lookup(s.Image)
		r := result{Image: s.Image, Found: found, Auth: []auth{}}
		for _, c := range creds {
			r.Auth = append(r.Auth, auth{Username: c.Username, Password: c.Password})
		}
		r.Execs, r.Errors = pluginCounters()
		results = append(results, r)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"results": results})
}

// pluginCounters reads the kubelet's metrics: plugin executions (the duration histogram's count) and failures.
func pluginCounters() (execs, errs float64) {
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
