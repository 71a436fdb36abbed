package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// newTransport dials the listed host names to their loopback addresses and refuses every other host, so a test
// can never reach the network. TLS is verified against the test CA with the real host name (SNI and certificate
// name checks are the ones a node would do against ACR).
func newTransport(caFile string, resolve []string) (http.RoundTripper, error) {
	routes := map[string]string{}
	for _, r := range resolve {
		host, addr, ok := strings.Cut(r, "=")
		if !ok || host == "" || addr == "" {
			return nil, fmt.Errorf("--resolve %q: want HOST=ADDR", r)
		}
		ip, _, err := net.SplitHostPort(addr)
		if err != nil || !net.ParseIP(ip).IsLoopback() {
			return nil, fmt.Errorf("--resolve %q: the address must be a loopback host:port", r)
		}
		routes[strings.ToLower(host)] = addr
	}
	pool := x509.NewCertPool()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no certificate", caFile)
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			to, ok := routes[strings.ToLower(host)]
			if !ok {
				return nil, fmt.Errorf("dial %s: no such host in this test (not given with --resolve)", host)
			}
			return dialer.DialContext(ctx, "tcp", to)
		},
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
	}, nil
}
