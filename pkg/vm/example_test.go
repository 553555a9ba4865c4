package vm_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"strings"

	"github.com/cnstack/cnstack/pkg/vm"
	"github.com/cnstack/cnstack/pkg/vm/vmimage"
)

// Boot two throw-away VMs on a private network, copy a file into one, run a
// command, and tear everything down (also on Ctrl-C).
func Example() {
	defer vm.HandleSignals()()
	ctx := context.Background()

	img, err := vmimage.Build(ctx, "images/debian12", vmimage.DefaultImageCache(), vmimage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	pnet, err := vm.NewNetwork("cluster", netip.MustParsePrefix("10.77.0.0/24"))
	if err != nil {
		log.Fatal(err)
	}
	defer pnet.Close()

	var nodes []*vm.VM
	for _, name := range []string{"node1", "node2"} {
		v, err := vm.Start(ctx, vm.Config{Image: img, Name: name, Networks: []vm.Attachment{{Network: pnet}},
			SerialLog: name + "-serial.log"})
		if err != nil {
			log.Fatal(err)
		}
		defer v.Close()
		nodes = append(nodes, v)
	}
	fmt.Println("accelerator:", nodes[0].Accel())

	f, err := os.Open("bundle.tar")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := nodes[0].Upload(ctx, f, "/root/bundle.tar", 0o644); err != nil {
		log.Fatal(err)
	}
	peer := nodes[1].NICs()[0].Address.Addr().String() // node2 on the private network
	res, err := nodes[0].Run(ctx, "ip -br addr; ip neigh; tar tf /root/bundle.tar | head; echo peer "+peer)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.TrimSpace(string(res.Stdout)))
}
