package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/herald-io/herald/api"
	"github.com/spf13/cobra"
)

func newPublishCmd() *cobra.Command {
	var (
		data, id, key, version, batch string
	)
	cmd := &cobra.Command{
		Use:   "publish STORE TYPE",
		Short: "publish an event, or a batch of events from JSON lines",
		Long: `Publish one event to a store, or a batch of events read from JSON lines.

The data is any JSON value (default null), checked before it is sent. With
--id or --key a retry stores nothing new: the answer is the original event,
marked "duplicate" in the table.

--batch reads one event per line, {"type","data","id","version"} ("data"
defaults to null; empty lines are skipped), checks every line, then sends
them in requests of at most 1,000 events (and 4 MiB). Each request is
stored all or nothing; if one fails, the earlier ones stay stored.`,
		Annotations: map[string]string{annUsage: "STORE TYPE [--data JSON|@FILE|-] [--id ID] [--key KEY] [--version V]\nSTORE --batch FILE|-"},
		Example: `herald publish shop-1 store/order/created --data '{"order":1001}' --key order-1001-created
herald publish shop-1 --batch events.jsonl`,
		Args: nargs(1, 2, "STORE TYPE (or STORE --batch FILE)"),
	}
	fs := cmd.Flags()
	fs.StringVar(&data, "data", "", "event data: a `JSON` value, @FILE to read it from a file, or - for stdin (default null)")
	fs.StringVar(&id, "id", "", "the event's own `ID` ([A-Za-z0-9._:-], 1-128 chars): publishing it again stores nothing")
	fs.StringVar(&key, "key", "", "Idempotency-Key: a retry with the same `KEY` stores nothing")
	fs.StringVar(&version, "version", "", "the data's schema `VERSION` (server default 1)")
	fs.StringVar(&batch, "batch", "", "publish the events in `FILE` (JSON lines; - for stdin)")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if cmd.Flags().Changed("batch") {
			for _, f := range []string{"data", "id", "key", "version"} {
				if err := exclusive(cmd, "batch", f); err != nil {
					return err
				}
			}
			if len(args) != 1 {
				return usagef("with --batch, publish wants STORE only (each line has its type), got %d arguments", len(args))
			}
			evs, err := readBatch(cmd, batch)
			if err != nil {
				return err
			}
			return publishBatch(cmd, k, args[0], evs)
		}
		if len(args) != 2 {
			return usagef("publish wants STORE TYPE, got %d argument%s", len(args), plural(len(args)))
		}
		raw, err := readData(cmd, data)
		if err != nil {
			return err
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		res, err := c.Publish(cmd.Context(), args[0], api.NewEvent{ID: id, Type: args[1], Version: version, Data: raw, IdempotencyKey: key})
		if err != nil {
			return err
		}
		return printPublished(cmd, k, res.Events, publishStatus(res))
	}
	return cmd
}

// readData resolves --data: JSON, @FILE or - (stdin); "" is null. Data
// that is not JSON is a usage error.
func readData(cmd *cobra.Command, s string) (json.RawMessage, error) {
	var raw []byte
	var err error
	from := flagRef(cmd, "data")
	switch {
	case s == "":
		return json.RawMessage("null"), nil
	case s == "-":
		raw, err = io.ReadAll(cmd.InOrStdin())
		from = "stdin"
	case strings.HasPrefix(s, "@"):
		raw, err = os.ReadFile(s[1:])
		from = s[1:]
	default:
		raw = []byte(s)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagRef(cmd, "data"), err)
	}
	if err := checkJSON(raw); err != nil {
		return nil, usagef("%s: the data is not valid JSON: %v", from, err)
	}
	return raw, nil
}

func checkJSON(raw []byte) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errors.New("empty")
	}
	var v json.RawMessage
	return json.Unmarshal(raw, &v)
}

// batchLine is one line of a --batch file.
type batchLine struct {
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
	ID      string          `json:"id"`
	Version string          `json:"version"`
}

// readBatch reads and checks every line before anything is sent.
func readBatch(cmd *cobra.Command, file string) ([]api.NewEvent, error) {
	var r io.Reader
	name := file
	if file == "-" {
		r, name = cmd.InOrStdin(), "stdin"
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagRef(cmd, "batch"), err)
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), api.MaxBodyBytes)
	var evs []api.NewEvent
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l batchLine
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, usagef("%s:%d: %v", name, n, strings.TrimPrefix(err.Error(), "json: "))
		}
		if dec.More() {
			return nil, usagef("%s:%d: more than one JSON value on the line", name, n)
		}
		if l.Type == "" {
			return nil, usagef("%s:%d: no \"type\"", name, n)
		}
		if len(l.Data) == 0 {
			l.Data = json.RawMessage("null")
		}
		evs = append(evs, api.NewEvent{ID: l.ID, Type: l.Type, Version: l.Version, Data: bytes.Clone(l.Data)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(evs) == 0 {
		return nil, usagef("%s holds no events", name)
	}
	return evs, nil
}

// chunks splits a batch into requests of at most api.MaxBatchEvents
// events and about api.MaxBodyBytes.
func chunks(evs []api.NewEvent) [][]api.NewEvent {
	const overhead = 64 // braces, keys and quotes of one event
	limit := api.MaxBodyBytes - 4<<10
	var out [][]api.NewEvent
	start, size := 0, 0
	for i, e := range evs {
		n := overhead + len(e.ID) + len(e.Type) + len(e.Version) + len(e.Data)
		if i > start && (i-start == api.MaxBatchEvents || size+n > limit) {
			out = append(out, evs[start:i])
			start, size = i, 0
		}
		size += n
	}
	return append(out, evs[start:])
}

func publishBatch(cmd *cobra.Command, k *conn, store string, evs []api.NewEvent) error {
	c, err := k.client()
	if err != nil {
		return err
	}
	var all []api.Event
	var status []string
	sent := 0
	for i, ch := range chunks(evs) {
		res, err := c.PublishBatch(cmd.Context(), store, ch)
		if err != nil {
			if sent > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "herald: request %d (events %d-%d) failed; the %d events before were stored\n",
					i+1, sent+1, sent+len(ch), sent)
			}
			return err
		}
		sent += len(ch)
		all = append(all, res.Events...)
		status = append(status, publishStatus(res)...)
	}
	return printPublished(cmd, k, all, status)
}

// publishStatus says which events a publish stored and which it found
// already stored. The API says only whether any was new (201) or none
// (200); in a batch with both, the new events are the ones accepted with
// this request: they share its timestamp (the one of the highest seq,
// which is surely new), while an original keeps the time it was first
// accepted. An event repeated within the batch is a duplicate after its
// first time.
func publishStatus(res *api.PublishResult) []string {
	out := make([]string, len(res.Events))
	if !res.Created {
		for i := range out {
			out[i] = "duplicate"
		}
		return out
	}
	top := 0
	for i, e := range res.Events {
		if e.Seq > res.Events[top].Seq {
			top = i
		}
	}
	ts := res.Events[top].Timestamp
	seen := map[uint64]bool{}
	for i, e := range res.Events {
		if e.Timestamp.Equal(ts) && !seen[e.Seq] {
			out[i] = "created"
		} else {
			out[i] = "duplicate"
		}
		seen[e.Seq] = true
	}
	return out
}

func printPublished(cmd *cobra.Command, k *conn, evs []api.Event, status []string) error {
	if k.json() {
		return writeEventLines(cmd.OutOrStdout(), evs)
	}
	return eventTable(cmd.OutOrStdout(), evs, status)
}
