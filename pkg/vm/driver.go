package vm

import (
	"context"
	"io"
	"io/fs"
)

// Driver starts the machines a boot verification runs in. QEMU on this
// host (the QEMU driver, this package's Start) is the first
// implementation; a driver for KubeVirt (a VirtualMachineInstance per
// node, reached through a port-forward or a Service) or a cloud (an
// instance per node from an image, reached over SSH through a bastion)
// implements the same two interfaces, so verification can fan out beyond
// one host's cores.
//
// A driver must keep the guests off the network the way QEMU's
// "-nic user,restrict=on" does (KubeVirt: a NetworkPolicy denying egress;
// cloud: a security group with no egress rule), because the verification's
// no-egress assertion proves exactly that; and Close must leave nothing
// behind (the per-run overlay, the VMI, the instance).
type Driver interface {
	// Name is the driver's name in reports ("qemu", "kubevirt", ...).
	Name() string
	// Start boots one machine from cfg (cfg.Image is the base image the
	// driver knows how to use: a qcow2 here, a containerDisk or a cloud
	// image ID elsewhere) and returns once commands can run in it. ctx
	// bounds the start only.
	Start(ctx context.Context, cfg Config) (Machine, error)
}

// Machine is one running guest, as a verification uses it: run commands,
// move files in and out, read its console, shut it down.
type Machine interface {
	// Name is the guest's hostname (node0, node1, ...).
	Name() string
	// Run runs a shell command as root and returns its output and exit status.
	Run(ctx context.Context, command string) (Result, error)
	// Exec runs a command with streams attached.
	Exec(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) error
	// Upload writes r to remotePath with mode; UploadFile copies a local file.
	Upload(ctx context.Context, r io.Reader, remotePath string, mode fs.FileMode) error
	UploadFile(ctx context.Context, localPath, remotePath string) error
	// Download copies remotePath out of the guest into w.
	Download(ctx context.Context, remotePath string, w io.Writer) error
	// Serial is the guest's console output so far (the boot log).
	Serial() ([]byte, error)
	// Done is closed when the guest has stopped.
	Done() <-chan struct{}
	// Close stops the guest and removes everything the run created.
	Close() error
}

// QEMU is the driver that boots guests with QEMU on this host (KVM when a
// functional probe shows it works, else TCG): Start.
type QEMU struct{}

// Name implements Driver.
func (QEMU) Name() string { return "qemu" }

// Start implements Driver with this package's Start.
func (QEMU) Start(ctx context.Context, cfg Config) (Machine, error) {
	v, err := Start(ctx, cfg)
	if err != nil {
		return nil, err // never a non-nil interface holding a nil *VM
	}
	return v, nil
}

var (
	_ Driver  = QEMU{}
	_ Machine = (*VM)(nil)
)
