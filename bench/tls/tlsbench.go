// TLS benchmark client for nfsv3driver (not a test). Modes:
//
//	cycle ADDR SOURCE N       N Create+Mount+Unmount+Remove cycles on one
//	                          kept connection; prints p50/p99/max per cycle
//	handshake ADDR SECONDS C  C goroutines, a new connection per Activate
//	                          for SECONDS; prints connections/s
//	hold ADDR C SECONDS       open C kept connections (one request each),
//	                          hold them SECONDS, then close
//
// ADDR is http://... or https://...; for https, NFSV3_TLS_CA, NFSV3_TLS_CERT
// and NFSV3_TLS_KEY name the files, and the server is verified as 127.0.0.1.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func die(f string, a ...interface{}) { fmt.Fprintf(os.Stderr, "tlsbench: "+f+"\n", a...); os.Exit(1) }

func transport(keepAlive bool) *http.Transport {
	tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1024}
	if ca := os.Getenv("NFSV3_TLS_CA"); ca != "" {
		cert, err := tls.LoadX509KeyPair(os.Getenv("NFSV3_TLS_CERT"), os.Getenv("NFSV3_TLS_KEY"))
		if err != nil {
			die("client certificate: %v", err)
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			die("CA: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool,
			ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	return tr
}

func post(c *http.Client, url, body string) {
	resp, err := c.Post(url, "", bytes.NewBufferString(body))
	if err != nil {
		die("%s: %v", url, err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(out, []byte(`"Err":"`)) && !bytes.Contains(out, []byte(`"Err":""`)) {
		die("%s: %s", url, out)
	}
}

func pct(d []time.Duration, p float64) time.Duration {
	return d[int(float64(len(d)-1)*p)]
}

func main() {
	if len(os.Args) < 5 {
		die("usage: tlsbench cycle ADDR SOURCE N | handshake ADDR SECONDS C | hold ADDR C SECONDS")
	}
	addr := os.Args[2]
	switch os.Args[1] {
	case "cycle":
		n, _ := strconv.Atoi(os.Args[4])
		c := &http.Client{Transport: transport(true)}
		post(c, addr+"/Plugin.Activate", "{}")
		lat := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("bench%d_%d", os.Getpid(), i)
			t := time.Now()
			post(c, addr+"/VolumeDriver.Create", fmt.Sprintf(`{"Name":"%s","Opts":{"source":"%s"}}`, name, os.Args[3]))
			post(c, addr+"/VolumeDriver.Mount", fmt.Sprintf(`{"Name":"%s"}`, name))
			post(c, addr+"/VolumeDriver.Unmount", fmt.Sprintf(`{"Name":"%s"}`, name))
			post(c, addr+"/VolumeDriver.Remove", fmt.Sprintf(`{"Name":"%s"}`, name))
			lat = append(lat, time.Since(t))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Printf("cycles %d p50_ms %.3f p99_ms %.3f max_ms %.3f\n", n, ms(pct(lat, .5)), ms(pct(lat, .99)), ms(lat[n-1]))
	case "handshake":
		secs, _ := strconv.Atoi(os.Args[3])
		conc, _ := strconv.Atoi(os.Args[4])
		var count int64
		stop := time.Now().Add(time.Duration(secs) * time.Second)
		var wg sync.WaitGroup
		for g := 0; g < conc; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Transport: transport(false)}
				for time.Now().Before(stop) {
					post(c, addr+"/Plugin.Activate", "{}")
					atomic.AddInt64(&count, 1)
				}
			}()
		}
		wg.Wait()
		fmt.Printf("connections %d per_s %.0f\n", count, float64(count)/float64(secs))
	case "hold":
		conc, _ := strconv.Atoi(os.Args[3])
		secs, _ := strconv.Atoi(os.Args[4])
		clients := make([]*http.Client, conc)
		for i := range clients {
			clients[i] = &http.Client{Transport: transport(true)}
			post(clients[i], addr+"/Plugin.Activate", "{}")
		}
		fmt.Printf("holding %d connections\n", conc)
		time.Sleep(time.Duration(secs) * time.Second)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
