package main

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type api struct {
	core    kubernetes.Interface
	dynamic dynamic.Interface
}

func newAPI(kubeconfig string) (*api, error) {
	if kubeconfig == "" {
		return nil, fmt.Errorf("--kubeconfig (or KUBECONFIG) is required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &api{core: core, dynamic: dyn}, nil
}

type pullImage struct {
	Container string `json:"container,omitempty"`
	Image     string `json:"image"`
}

// pullTarget is what a node is asked to pull: images, and the pull Secrets it could read.
type pullTarget struct {
	Object string
	// The Pod's namespace, name, UID and ServiceAccount, which the kubelet hands its credential provider keyring.
	Namespace, Name, UID, ServiceAccount string
	Images                               []pullImage
	Secrets                              []v1.Secret
	// Missing lists references the kubelet could not read (it warns FailedToRetrieveImagePullSecret and goes on).
	Missing []string
}

// podTarget reads the Pod and its imagePullSecrets as the kubelet's getPullSecretsForPod does: empty names are
// skipped, unreadable Secrets are noted and skipped, the rest are used in the Pod's order.
func (a *api) podTarget(ctx context.Context, ref string) (*pullTarget, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("--pod %q: want NAMESPACE/NAME", ref)
	}
	pod, err := a.core.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", ref, err)
	}
	t := &pullTarget{Object: "pod/" + ref, Namespace: ns, Name: name, UID: string(pod.UID), ServiceAccount: pod.Spec.ServiceAccountName}
	for _, c := range pod.Spec.InitContainers {
		t.Images = append(t.Images, pullImage{Container: c.Name, Image: c.Image})
	}
	for _, c := range pod.Spec.Containers {
		t.Images = append(t.Images, pullImage{Container: c.Name, Image: c.Image})
	}
	for _, r := range pod.Spec.ImagePullSecrets {
		if r.Name == "" {
			continue
		}
		s, err := a.core.CoreV1().Secrets(ns).Get(ctx, r.Name, metav1.GetOptions{})
		if err != nil {
			t.Missing = append(t.Missing, ns+"/"+r.Name)
			continue
		}
		t.Secrets = append(t.Secrets, *s)
	}
	return t, nil
}

var imageCacheResource = schema.GroupVersionResource{Group: "eci.alibabacloud.com", Version: "v1", Resource: "imagecaches"}

// imageCacheTarget reads an ECI ImageCache: spec.images, and spec.imagePullSecrets as "namespace:name" strings.
// ECI pulls these itself; the kubelet's keyring stands in for its credential matching (same auths semantics).
func (a *api) imageCacheTarget(ctx context.Context, name string) (*pullTarget, error) {
	ic, err := a.dynamic.Resource(imageCacheResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("imagecache %s: %w", name, err)
	}
	spec, _ := ic.Object["spec"].(map[string]any)
	t := &pullTarget{Object: "imagecache/" + name}
	images, _ := spec["images"].([]any)
	for _, i := range images {
		if s, ok := i.(string); ok {
			t.Images = append(t.Images, pullImage{Image: s})
		}
	}
	refs, _ := spec["imagePullSecrets"].([]any)
	for _, r := range refs {
		s, _ := r.(string)
		ns, secretName, ok := strings.Cut(s, ":")
		if !ok || ns == "" || secretName == "" {
			t.Missing = append(t.Missing, s)
			continue
		}
		secret, err := a.core.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			t.Missing = append(t.Missing, ns+"/"+secretName)
			continue
		}
		t.Secrets = append(t.Secrets, *secret)
	}
	return t, nil
}
