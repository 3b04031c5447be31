// A client configured as volman's driverhttp configures its TLS to a driver:
// the spec file's client certificate and key, the CA as the only root, the
// server verified as 127.0.0.1, TLS 1.2 at least with the ECDHE-RSA AES-GCM
// suites, keep-alive. It reads the spec file the driver wrote, runs the
// sequence volman runs for one container, and exits non-zero naming the step
// that failed.
//
// usage: volman_client SPEC_FILE SOURCE [tls12]
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

type spec struct {
	Name      string
	Addr      string
	TLSConfig *struct {
		InsecureSkipVerify bool
		CAFile             string
		CertFile           string
		KeyFile            string
	}
	UniqueVolumeIds bool
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "volman_client: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: volman_client SPEC_FILE SOURCE [tls12]")
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("spec file: %v", err)
	}
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		fail("spec file: %v", err)
	}
	if s.TLSConfig == nil || !strings.HasPrefix(s.Addr, "https://") {
		fail("spec file has no TLSConfig or no https address: %s", raw)
	}
	cert, err := tls.LoadX509KeyPair(s.TLSConfig.CertFile, s.TLSConfig.KeyFile)
	if err != nil {
		fail("client certificate: %v", err)
	}
	caPEM, err := os.ReadFile(s.TLSConfig.CAFile)
	if err != nil {
		fail("CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fail("CA: no certificate in %s", s.TLSConfig.CAFile)
	}
	conf := &tls.Config{
		Certificates:       []tls.Certificate{cert},
		RootCAs:            pool,
		ServerName:         "127.0.0.1",
		InsecureSkipVerify: s.TLSConfig.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		},
	}
	if len(os.Args) > 3 && os.Args[3] == "tls12" {
		conf.MaxVersion = tls.VersionTLS12
	}
	var version uint16
	tr := &http.Transport{TLSClientConfig: conf, MaxIdleConnsPerHost: 1}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	call := func(route string, body interface{}) map[string]interface{} {
		b, _ := json.Marshal(body)
		resp, err := client.Post(s.Addr+route, "", bytes.NewReader(b))
		if err != nil {
			fail("%s: %v", route, err)
		}
		defer resp.Body.Close()
		if resp.TLS == nil {
			fail("%s: answered without TLS", route)
		}
		if !resp.TLS.HandshakeComplete {
			fail("%s: handshake not complete", route)
		}
		version = resp.TLS.Version
		out, _ := io.ReadAll(resp.Body)
		var m map[string]interface{}
		if err := json.Unmarshal(out, &m); err != nil {
			fail("%s: answer is not JSON: %q", route, out)
		}
		if e, _ := m["Err"].(string); e != "" {
			fail("%s: Err %s", route, e)
		}
		return m
	}
	name := fmt.Sprintf("vol=%d_container=%d", os.Getpid(), time.Now().UnixNano())
	call("/Plugin.Activate", struct{}{})
	call("/VolumeDriver.Create", map[string]interface{}{"Name": name, "Opts": map[string]interface{}{"source": os.Args[2]}})
	m := call("/VolumeDriver.Mount", map[string]string{"Name": name})
	mp, _ := m["Mountpoint"].(string)
	if mp == "" {
		fail("Mount: no Mountpoint")
	}
	l := call("/VolumeDriver.List", struct{}{})
	if vols, _ := l["Volumes"].([]interface{}); len(vols) == 0 {
		fail("List: no volumes after Mount")
	}
	call("/VolumeDriver.Unmount", map[string]string{"Name": name})
	call("/VolumeDriver.Remove", map[string]string{"Name": name})
	fmt.Printf("volman_client: %s mounted at %s and removed over TLS 0x%04x\n", name, mp, version)
}

