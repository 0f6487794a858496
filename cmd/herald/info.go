package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/herald-io/herald/api"
	"github.com/spf13/cobra"
)

func newHealthCmd() *cobra.Command {
	var ready bool
	cmd := &cobra.Command{
		Use:   "health",
		Short: "check that a node serves (/healthz), or with --ready that it is ready (/readyz)",
		Long: `Check a node: it serves (GET /healthz), or with --ready that it knows a
leader and has applied everything it knows to be committed (GET /readyz;
exit status 1 with "error: not_ready: ..." when not).`,
		Example: `herald health --ready --addr 127.0.0.1:8090`,
		Args:    nargs(0, 0, ""),
	}
	cmd.Flags().BoolVar(&ready, "ready", false, "check readiness instead")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		h := &api.Health{Status: "ready"}
		if ready {
			err = c.Ready(cmd.Context())
		} else {
			h, err = c.Health(cmd.Context())
		}
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), h)
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), h.Status)
		return err
	}
	return cmd
}

func newOpenAPICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "openapi",
		Short: "print the node's OpenAPI document (GET /v1/openapi.json)",
		Long: `Print the OpenAPI 3 document of the whole HTTP API, as the node at --addr
serves it (GET /v1/openapi.json): as served, or with -o json on one line.`,
		Example: `herald openapi > herald-openapi.json`,
		Args:    nargs(0, 0, ""),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		doc, err := c.OpenAPIDocument(cmd.Context())
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			var b bytes.Buffer
			if err := json.Compact(&b, doc); err != nil {
				return fmt.Errorf("the OpenAPI document is not JSON: %w", err)
			}
			doc = b.Bytes()
		}
		if _, err := w.Write(doc); err != nil {
			return err
		}
		if len(doc) > 0 && doc[len(doc)-1] != '\n' {
			_, err = fmt.Fprintln(w)
		}
		return err
	}
	return cmd
}
