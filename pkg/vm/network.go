package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
)

// Network is a private layer-2 network joining the VMs of one test: an
// Ethernet switch in this process, listening on a Unix socket that each VM's
// second NIC connects to with QEMU's stream netdev. Nothing on it is routed
// anywhere; only the VMs attached to it can talk to each other.
type Network struct {
	name   string
	prefix netip.Prefix
	dir    string
	sock   string
	ln     *net.UnixListener

	mu     sync.Mutex
	next   netip.Addr
	ports  map[*switchPort]struct{}
	macs   map[[6]byte]*switchPort
	closed bool
	wg     sync.WaitGroup
}

// NewNetwork starts a switch for the IPv4 subnet prefix (e.g. 10.77.0.0/24).
// Addresses are handed out from .2 upwards by Allocate (or chosen by the caller
// in Attachment.Address). Close it after the VMs attached to it.
func NewNetwork(name string, prefix netip.Prefix) (*Network, error) {
	prefix = prefix.Masked()
	if !prefix.Addr().Is4() || prefix.Bits() > 29 || prefix.Bits() < 8 {
		return nil, fmt.Errorf("network %s: %v: want an IPv4 prefix between /8 and /29", name, prefix)
	}
	// A short path: Unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", netDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	if err := writeOwner(dir, owner{}); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	sock := filepath.Join(dir, "switch.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	n := &Network{
		name: name, prefix: prefix, dir: dir, sock: sock, ln: ln,
		next:  prefix.Addr().Next().Next(),
		ports: map[*switchPort]struct{}{},
		macs:  map[[6]byte]*switchPort{},
	}
	n.wg.Add(1)
	go n.accept()
	register(n)
	return n, nil
}

const netDirPrefix = "cnstack-net-"

// Name is the network's name.
func (n *Network) Name() string { return n.name }

// Prefix is the network's subnet.
func (n *Network) Prefix() netip.Prefix { return n.prefix }

// Allocate returns the next free host address, with the network's prefix length.
func (n *Network) Allocate() (netip.Prefix, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.next
	last := lastAddr(n.prefix)
	if !n.prefix.Contains(a) || a == last {
		return netip.Prefix{}, fmt.Errorf("network %s: no free address left in %v", n.name, n.prefix)
	}
	n.next = a.Next()
	return netip.PrefixFrom(a, n.prefix.Bits()), nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// Close stops the switch; attached NICs lose their link.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	ports := make([]*switchPort, 0, len(n.ports))
	for p := range n.ports {
		ports = append(ports, p)
	}
	n.mu.Unlock()
	err := n.ln.Close()
	for _, p := range ports {
		p.conn.Close()
	}
	n.wg.Wait()
	unregister(n)
	if rerr := os.RemoveAll(n.dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (n *Network) close() error { return n.Close() }

// qemuArgs attaches a NIC with mac to the switch.
func (n *Network) qemuArgs(id, mac string) []string {
	return []string{
		"-netdev", fmt.Sprintf("stream,id=%s,server=off,addr.type=unix,addr.path=%s", id, qemuEscape(n.sock)),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=%s,mac=%s", id, mac),
	}
}

// switchPort is one QEMU connection. Frames to it are queued and written by
// its own goroutine, so one slow VM cannot stall the others; when its queue is
// full, frames are dropped, as a real switch would.
type switchPort struct {
	conn net.Conn
	out  chan []byte
}

const maxFrame = 65536

func (n *Network) accept() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		p := &switchPort{conn: c, out: make(chan []byte, 512)}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			c.Close()
			return
		}
		n.ports[p] = struct{}{}
		n.mu.Unlock()
		n.wg.Add(2)
		go n.readPort(p)
		go n.writePort(p)
	}
}

// readPort reads QEMU's stream framing (a 4-byte big-endian length, then the
// Ethernet frame), learns source MACs and forwards or floods.
func (n *Network) readPort(p *switchPort) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		delete(n.ports, p)
		for mac, q := range n.macs {
			if q == p {
				delete(n.macs, mac)
			}
		}
		n.mu.Unlock()
		close(p.out)
		p.conn.Close()
	}()
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(p.conn, hdr[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size > maxFrame {
			return // not a QEMU stream peer
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(p.conn, frame); err != nil {
			return
		}
		if size < 14 {
			continue
		}
		var dst, src [6]byte
		copy(dst[:], frame[0:6])
		copy(src[:], frame[6:12])
		n.mu.Lock()
		if src[0]&1 == 0 {
			n.macs[src] = p
		}
		var targets []*switchPort
		if q, ok := n.macs[dst]; ok && dst[0]&1 == 0 {
			if q != p {
				targets = append(targets, q)
			}
		} else {
			for q := range n.ports {
				if q != p {
					targets = append(targets, q)
				}
			}
		}
		for _, q := range targets {
			select {
			case q.out <- frame:
			default: // queue full: drop
			}
		}
		n.mu.Unlock()
	}
}

func (n *Network) writePort(p *switchPort) {
	defer n.wg.Done()
	buf := make([]byte, 4+maxFrame)
	for frame := range p.out {
		binary.BigEndian.PutUint32(buf[:4], uint32(len(frame)))
		copy(buf[4:], frame)
		if _, err := p.conn.Write(buf[:4+len(frame)]); err != nil {
			p.conn.Close()
			for range p.out { // drain until the reader closes it
			}
			return
		}
	}
}

// macFor derives a stable, locally administered unicast MAC from an IPv4
// address, so every NIC on a network has a distinct MAC.
func macFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}
