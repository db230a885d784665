package notify

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// AllowPrivateEnv names the setting that lets webhooks reach addresses
// that are not public: a comma-separated list of addresses and CIDR
// prefixes ("127.0.0.1", "10.0.0.0/8", "fd00::/8"), or "*" for every
// address. Without it, a webhook may only connect to public addresses.
const AllowPrivateEnv = "MILLRACE_NOTIFY_ALLOW_PRIVATE"

// Networks are the non-public addresses the operator lets webhooks reach.
type Networks struct {
	all      bool
	prefixes []netip.Prefix
}

// ParseNetworks reads AllowPrivateEnv's form: addresses, CIDR prefixes, or
// "*".
func ParseNetworks(list []string) (Networks, error) {
	var n Networks
	for _, s := range list {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case s == "*":
			n.all = true
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return n, fmt.Errorf("%s: %q is not an address or a CIDR prefix (10.0.0.0/8)", AllowPrivateEnv, s)
			}
			n.prefixes = append(n.prefixes, p.Masked())
		default:
			a, err := netip.ParseAddr(s)
			if err != nil {
				return n, fmt.Errorf("%s: %q is not an address or a CIDR prefix (10.0.0.0/8)", AllowPrivateEnv, s)
			}
			n.prefixes = append(n.prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return n, nil
}

func (n Networks) allows(a netip.Addr) bool {
	if n.all {
		return true
	}
	for _, p := range n.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// BlockedAddressError is a connection refused because of the address it
// would reach.
type BlockedAddressError struct {
	Addr netip.Addr
	Kind string
}

func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("refused to connect to %s, a %s address: webhooks only reach public addresses unless %s on the workers allows it", e.Addr, e.Kind, AllowPrivateEnv)
}

// nonPublic names the kind of a, or "" for a public address. 100.64.0.0/10
// (carrier-grade NAT, often a cloud's internal network) counts as private.
func nonPublic(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local" // 169.254.169.254, the cloud metadata service, is one
	case a.IsPrivate(), cgnat.Contains(a):
		return "private"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	return ""
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// NewClient returns the HTTP client deliveries use: no redirects (they
// could lead off the allow-list), bounded time, no proxy (a proxy would
// dial for us, unchecked), and a dialer that checks the very address it
// connects to, after name resolution, so that neither a name resolving to
// an internal address nor DNS rebinding between a check and the dial gets
// through.
func NewClient(allow Networks) *http.Client {
	d := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("dial %s: %w", address, err)
			}
			if kind := nonPublic(ap.Addr()); kind != "" && !allow.allows(ap.Addr().Unmap()) {
				return &BlockedAddressError{Addr: ap.Addr().Unmap(), Kind: kind}
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: Timeout,
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            d.DialContext,
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  Timeout,
			MaxResponseHeaderBytes: 64 << 10,
			DisableKeepAlives:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
