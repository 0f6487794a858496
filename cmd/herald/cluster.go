package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const clusterUsage = `Usage:
  herald cluster status   [--addr HTTPADDR]
  herald cluster join     [--addr HTTPADDR] --id ID --raft-addr ADDR --http-addr ADDR
  herald cluster remove   [--addr HTTPADDR] --id ID
  herald cluster transfer [--addr HTTPADDR] [--to ID]

--addr is any member's HTTP address (default 127.0.0.1:8080; https://... for
a cluster serving HTTPS, with --ca FILE for a private CA); requests that only
the leader can serve are forwarded to it.
`

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, clusterUsage)
		return errors.New("missing subcommand")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("cluster "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP address of any member")
	id := fs.String("id", "", "node id (join, remove)")
	raftAddr := fs.String("raft-addr", "", "Raft address of the joining node")
	httpAddr := fs.String("http-addr", "", "HTTP address of the joining node")
	to := fs.String("to", "", "transfer: the member to hand leadership to (default: any up-to-date voter)")
	ca := fs.String("ca", "", "CA certificate (PEM) to trust when --addr is https:// with a private CA")
	if err := envFlags(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var method, path string
	var body any
	switch sub {
	case "status":
		method, path = http.MethodGet, "/v1/cluster"
	case "join":
		if *id == "" || *raftAddr == "" || *httpAddr == "" {
			return errors.New("join needs --id, --raft-addr and --http-addr")
		}
		method, path = http.MethodPost, "/v1/cluster/nodes"
		body = map[string]any{"id": *id, "raft_addr": *raftAddr, "http_addr": *httpAddr, "voter": true}
	case "remove":
		if *id == "" {
			return errors.New("remove needs --id")
		}
		method, path = http.MethodDelete, "/v1/cluster/nodes/"+*id
	case "transfer":
		method, path = http.MethodPost, "/v1/cluster/leader/transfer"
		body = map[string]string{"to": *to}
	default:
		fmt.Fprint(stderr, clusterUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
	client, err := cliClient(*ca)
	if err != nil {
		return err
	}
	return callAPI(ctx, client, stdout, method, httpBase(*addr)+path, body)
}

func httpBase(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

// callAPI makes one request and prints the JSON answer indented; an error
// answer becomes the command's error.
func callAPI(ctx context.Context, client *http.Client, stdout io.Writer, method, url string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s: %s (%s)", resp.Status, e.Error.Message, e.Error.Code)
		}
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil {
		out.Reset()
		out.Write(raw)
	}
	fmt.Fprintln(stdout, strings.TrimSpace(out.String()))
	return nil
}
