// Command kindnet is kindlab's stand-in for kind's kindnetd.
//
// kind's kindnetd lives in a nested module of the kind repository that the Go
// module proxy does not serve, so kindlab builds this small agent instead. It
// does what a kind cluster needs from kindnetd and nothing more:
//
//   - writes /etc/cni/net.d/10-kindnet.conflist (ptp + host-local over the
//     node's podCIDRs, portmap), like kindnetd does;
//   - routes other nodes' podCIDRs via their InternalIP;
//   - masquerades traffic from the pod subnet to destinations outside it
//     (one nftables table, "kindnet-masq").
//
// It talks to the API server with the pod's service-account token over plain
// net/http, so it needs only the standard library. Network policies are not
// implemented.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

const (
	saDir      = "/var/run/secrets/kubernetes.io/serviceaccount"
	cniPath    = "/etc/cni/net.d/10-kindnet.conflist"
	resyncEach = 10 * time.Second
)

type nodeList struct {
	Items []node `json:"items"`
}

type node struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR"`
		PodCIDRs []string `json:"podCIDRs"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

func (n node) cidrs() []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

func (n node) internalIPs() []string {
	var ips []string
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" {
			ips = append(ips, a.Address)
		}
	}
	return ips
}

type apiClient struct {
	base   string
	token  string
	client *http.Client
}

func newAPIClient() (*apiClient, error) {
	endpoint := os.Getenv("CONTROL_PLANE_ENDPOINT")
	if endpoint == "" {
		endpoint = net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	}
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s/ca.crt", saDir)
	}
	return &apiClient{
		base: "https://" + endpoint,
		client: &http.Client{
			Timeout:   15 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		},
	}, nil
}

func (c *apiClient) nodes() ([]node, error) {
	// the token is rotated by the kubelet: read it for each request
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, c.base+"/api/v1/nodes", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/nodes: %s", resp.Status)
	}
	var list nodeList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func eth0MTU() int {
	ifc, err := net.InterfaceByName("eth0")
	if err != nil {
		return 0
	}
	return ifc.MTU
}

// cniConfig renders the same plugin chain as kindnetd: ptp with host-local IPAM
// over the node's podCIDRs, then portmap.
func cniConfig(cidrs []string, mtu int) ([]byte, error) {
	var ranges [][]map[string]string
	var routes []map[string]string
	v4, v6 := false, false
	for _, c := range cidrs {
		ranges = append(ranges, []map[string]string{{"subnet": c}})
		if strings.Contains(c, ":") {
			v6 = true
		} else {
			v4 = true
		}
	}
	if v4 {
		routes = append(routes, map[string]string{"dst": "0.0.0.0/0"})
	}
	if v6 {
		routes = append(routes, map[string]string{"dst": "::/0"})
	}
	ptp := map[string]any{
		"type":   "ptp",
		"ipMasq": false,
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": "/run/cni-ipam-state",
			"routes":  routes,
			"ranges":  ranges,
		},
	}
	if mtu > 0 {
		ptp["mtu"] = mtu
	}
	conf := map[string]any{
		"cniVersion": "0.3.1",
		"name":       "kindnet",
		"plugins": []any{
			ptp,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func writeIfChanged(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	// a name CNI does not load, then an atomic rename
	tmp := path + ".temp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

func run(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

func ensureMasquerade(podSubnets []string) error {
	var rules []string
	for _, s := range podSubnets {
		fam := "ip"
		if strings.Contains(s, ":") {
			fam = "ip6"
		}
		rules = append(rules, fmt.Sprintf("    %s saddr %s %s daddr != %s masquerade", fam, s, fam, s))
	}
	script := "add table inet kindnet-masq\ndelete table inet kindnet-masq\n" +
		"table inet kindnet-masq {\n  chain postrouting {\n" +
		"    type nat hook postrouting priority srcnat; policy accept;\n" +
		strings.Join(rules, "\n") + "\n  }\n}\n"
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f -: %v: %s", err, out)
	}
	return nil
}

func sync(c *apiClient, hostIP string, mtu int) error {
	nodes, err := c.nodes()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		self := false
		for _, ip := range n.internalIPs() {
			if ip == hostIP {
				self = true
			}
		}
		if self {
			cidrs := n.cidrs()
			if len(cidrs) == 0 {
				return fmt.Errorf("node %s has no podCIDR yet", n.Metadata.Name)
			}
			conf, err := cniConfig(cidrs, mtu)
			if err != nil {
				return err
			}
			if changed, err := writeIfChanged(cniPath, conf); err != nil {
				return err
			} else if changed {
				log.Printf("wrote %s for %v", cniPath, cidrs)
			}
			continue
		}
		for _, cidr := range n.cidrs() {
			for _, ip := range n.internalIPs() {
				if strings.Contains(ip, ":") != strings.Contains(cidr, ":") {
					continue
				}
				if err := run("ip", "route", "replace", cidr, "via", ip); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	hostIP := os.Getenv("HOST_IP")
	podSubnets := strings.Split(os.Getenv("POD_SUBNET"), ",")
	if hostIP == "" || os.Getenv("POD_SUBNET") == "" {
		log.Fatal("HOST_IP and POD_SUBNET must be set (the kind CNI manifest sets them)")
	}
	c, err := newAPIClient()
	if err != nil {
		log.Fatal(err)
	}
	mtu := eth0MTU()
	masqDone := false
	for {
		if !masqDone {
			if err := ensureMasquerade(podSubnets); err != nil {
				log.Printf("masquerade: %v", err)
			} else {
				masqDone = true
				log.Printf("masquerading traffic from %v", podSubnets)
			}
		}
		if err := sync(c, hostIP, mtu); err != nil {
			log.Printf("sync: %v", err)
			time.Sleep(2 * time.Second)
			continue
		}
		time.Sleep(resyncEach)
	}
}
