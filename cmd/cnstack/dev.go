package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/internal/atomicfile"
	"github.com/cnstack/cnstack/internal/sampleimages"
)

// devCommand holds hidden helpers for the demo and CI (a hidden top-level
// command).
func devCommand() *cli.Command {
	// A flag holds its parsed value: each command gets its own.
	dirFlag := func() cli.Flag {
		return &cli.StringFlag{Name: "dir", Usage: "the sample images `DIR` (default: testdata/images of the cnstack repository)"}
	}
	return &cli.Command{
		Name:   "dev",
		Usage:  "helpers for cnstack's own demo and tests",
		Hidden: true,
		Commands: []*cli.Command{
			{
				Name:  "push-samples",
				Usage: "push the sample stack's stand-in container images to a registry under their stripped names",
				Description: `Pushes the tiny images of testdata/images to REGISTRY (plain HTTP) as sealer names them
with the domain dropped (registry.k8s.io/pause -> REGISTRY/pause), so that
  --registry-mirror docker.io=REGISTRY --registry-mirror registry.k8s.io=REGISTRY
builds the sample stack with no internet.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "registry", Required: true, Usage: "`HOST:PORT` of the registry, e.g. 127.0.0.1:5000"},
					dirFlag(),
				},
				Action: func(ctx context.Context, c *cli.Command) error {
					samples, err := loadSamples(c)
					if err != nil {
						return err
					}
					if err := sampleimages.PushSamples(ctx, c.String("registry"), samples); err != nil {
						return err
					}
					fmt.Fprintf(c.Writer, "pushed %d sample images to %s\n", len(samples), c.String("registry"))
					return nil
				},
			},
			{
				Name:  "serve-samples",
				Usage: "serve the sample images from an in-memory registry until interrupted",
				Description: `Starts an in-memory registry on --listen, pushes the sample images into it, prints
its address (and writes it to --addr-file), then serves until SIGINT/SIGTERM.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "`HOST:PORT` to listen on (port 0 picks a free one)"},
					&cli.StringFlag{Name: "addr-file", Usage: "write the registry address to `FILE` once it serves"},
					dirFlag(),
				},
				Action: func(ctx context.Context, c *cli.Command) error {
					samples, err := loadSamples(c)
					if err != nil {
						return err
					}
					l, err := net.Listen("tcp", c.String("listen"))
					if err != nil {
						return err
					}
					srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 30 * time.Second}
					errc := make(chan error, 1)
					go func() { errc <- srv.Serve(l) }()
					addr := l.Addr().String()
					if err := sampleimages.PushSamples(ctx, addr, samples); err != nil {
						srv.Close()
						return err
					}
					if f := c.String("addr-file"); f != "" {
						if err := atomicfile.WriteFile(f, []byte(addr+"\n"), 0o644); err != nil {
							srv.Close()
							return err
						}
					}
					fmt.Fprintf(c.Writer, "serving %d sample images at %s\n", len(samples), addr)
					select {
					case <-ctx.Done():
						return srv.Close()
					case err := <-errc:
						if errors.Is(err, http.ErrServerClosed) {
							return nil
						}
						return err
					}
				},
			},
		},
	}
}

func loadSamples(c *cli.Command) ([]*sampleimages.Sample, error) {
	dir := c.String("dir")
	if dir == "" {
		var err error
		if dir, err = sampleimages.DefaultDir(); err != nil {
			return nil, err
		}
	}
	return sampleimages.Load(dir)
}
