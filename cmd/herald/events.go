package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/herald-io/herald/api"
	"github.com/spf13/cobra"
)

func newEventsCmd() *cobra.Command {
	var (
		after  uint64
		types  []string
		limit  int
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "events STORE [EVENT_ID]",
		Short: "read a store's events (one page, or --follow), or one event by id",
		Long: `Read a store's events: one page of at most --limit events after --after,
matching any --type pattern. The command then says, on stderr, the --after
of the next page (the API's "next" cursor, which can be past the last event
shown when a type filter skipped records).

--follow prints every matching event after --after and then each new one as
it is published (long polls), until Ctrl-C (exit status 0), or until --limit
events when --limit is given.

With EVENT_ID, prints that one event.`,
		Annotations: map[string]string{annUsage: "STORE [--after N] [--type PATTERN]... [--limit N] [--follow]\nSTORE EVENT_ID"},
		Example: `herald events shop-1 --type 'store/order/*' --limit 10
herald events shop-1 --after 42 --follow -o json`,
		Args: nargs(1, 2, "STORE [EVENT_ID]"),
	}
	fs := cmd.Flags()
	fs.Uint64Var(&after, "after", 0, "events with a seq above `N`")
	fs.StringSliceVar(&types, "type", nil, "only events whose type matches `PATTERN` (repeat it, or separate with commas; any may match)")
	fs.IntVar(&limit, "limit", 0, "at most `N` events (a page: 1-1000, server default 100; with --follow: stop after N)")
	fs.BoolVar(&follow, "follow", false, "keep printing new events until interrupted")
	cons := consistencyFlag(fs)
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if limit < 0 {
			return usagef("%s must be positive", flagRef(cmd, "limit"))
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		ctx, w := cmd.Context(), cmd.OutOrStdout()
		if len(args) == 2 {
			for _, f := range []string{"after", "type", "limit", "follow"} {
				if cmd.Flags().Changed(f) {
					return usagef("%s does not go with an EVENT_ID", flagRef(cmd, f))
				}
			}
			e, err := c.Event(ctx, args[0], args[1], queryOpts(cons))
			if err != nil {
				return err
			}
			if k.json() {
				return writeEventLines(w, []api.Event{*e})
			}
			return eventBlock(w, e)
		}
		o := api.ReadOptions{After: after, Limit: limit, Types: types, Consistency: api.Consistency(cons.val)}
		if follow {
			return followEvents(ctx, cmd, k, c, args[0], o)
		}
		page, err := c.Events(ctx, args[0], o)
		if err != nil {
			return err
		}
		if k.json() {
			err = writeEventLines(w, page.Events)
		} else if len(page.Events) > 0 {
			err = eventTable(w, page.Events, nil)
		}
		if err != nil {
			return err
		}
		hint := fmt.Sprintf("herald events %s --after %d", args[0], page.Next)
		for _, t := range types {
			hint += " --type " + shellQuote(t)
		}
		if len(page.Events) == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "no events after seq %d; later ones: %s\n", after, hint)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "next page: %s\n", hint)
		}
		return nil
	}
	return cmd
}

func shellQuote(s string) string {
	if strings.ContainsAny(s, "*?[]{}$ '\"\\") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// errStop ends a Follow that printed --limit events.
var errStop = errors.New("stop")

// followEvents prints events as they come until ctx ends (Ctrl-C: not an
// error) or --limit events were printed.
func followEvents(ctx context.Context, cmd *cobra.Command, k *conn, c *api.Client, store string, o api.ReadOptions) error {
	w := cmd.OutOrStdout()
	total := o.Limit
	if total > api.MaxLimit {
		o.Limit = api.MaxLimit
	}
	if !k.json() {
		if err := followRow(w, "SEQ", "ID", "TYPE", "VERSION", "TIMESTAMP", "DATA"); err != nil {
			return err
		}
	}
	n := 0
	var buf []byte
	err := c.Stream(ctx, store, o, func(e api.Event) error {
		var err error
		if k.json() {
			buf = appendEventLine(buf[:0], &e)
			_, err = w.Write(buf)
		} else {
			err = followRow(w, strconv.FormatUint(e.Seq, 10), e.ID, e.Type, e.Version, fmtTime(e.Timestamp), fmtData(e.Data))
		}
		if err != nil {
			return err
		}
		if n++; total > 0 && n >= total {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return nil
	}
	return err
}

func newStoresCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stores [STORE]",
		Short: "list the stores, or show one store's summary",
		Long: `List the stores, or show one store's summary: first and last seq, head hash,
event count, retention policy and what subscriptions hold back from it.`,
		Annotations: map[string]string{annLeaf: "1"},
		Example:     `herald stores shop-1`,
		Args:        nargs(0, 1, "at most one STORE"),
	}
	cons := consistencyFlag(cmd.Flags())
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if len(args) == 1 {
			s, err := c.Store(cmd.Context(), args[0], queryOpts(cons))
			if err != nil {
				return err
			}
			if k.json() {
				return writeJSON(w, s)
			}
			kv := newKV(w)
			kv.add("store", s.Store)
			kv.add("first seq", s.FirstSeq)
			kv.add("last seq", s.LastSeq)
			kv.add("events", s.Events)
			kv.add("head hash", orDash(s.HeadHash))
			kv.add("created", fmtTime(s.CreatedAt))
			kv.add("retention", fmtRetention(s.Retention))
			if s.Retention != nil {
				kv.add("held back", s.HeldBack)
				kv.add("held by", orDash(strings.Join(s.HeldBy, ", ")))
			}
			return kv.flush()
		}
		stores, err := c.Stores(cmd.Context(), queryOpts(cons))
		if err != nil {
			return err
		}
		if k.json() {
			if stores == nil {
				stores = []api.Store{}
			}
			return writeJSON(w, api.StoreList{Stores: stores})
		}
		if len(stores) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "no stores")
			return nil
		}
		tw := newTable(w, "STORE", "FIRST_SEQ", "LAST_SEQ", "EVENTS", "CREATED", "RETENTION", "HELD_BACK")
		for _, s := range stores {
			row(tw, s.Store, s.FirstSeq, s.LastSeq, s.Events, fmtTime(s.CreatedAt), fmtRetention(s.Retention), s.HeldBack)
		}
		return tw.Flush()
	}
	cmd.AddCommand(newSetRetentionCmd())
	return cmd
}

func fmtRetention(r *api.Retention) string {
	if r == nil || (r.MaxAge == "" && r.MaxEvents == 0) {
		return "none"
	}
	var parts []string
	if r.MaxAge != "" {
		parts = append(parts, "max age "+r.MaxAge)
	}
	if r.MaxEvents > 0 {
		parts = append(parts, fmt.Sprintf("max %d events", r.MaxEvents))
	}
	return strings.Join(parts, ", ")
}

func newSetRetentionCmd() *cobra.Command {
	var maxAge durationText
	var maxEvents uint64
	cmd := &cobra.Command{
		Use:   "set-retention STORE",
		Short: "set a store's retention policy (no flags: back to the server default)",
		Long: `Set a store's retention policy: keep at most --max-events events and none
older than --max-age (at least 1m). Events a subscription still has to
deliver are kept. With neither flag the store returns to the server's
default (herald serve --retention-max-age/--retention-max-events).`,
		Example: `herald stores set-retention shop-1 --max-age 720h --max-events 1000000`,
		Args:    nargs(1, 1, "STORE"),
	}
	cmd.Flags().Var(&maxAge, "max-age", "remove events older than `D` (a Go duration: 720h)")
	cmd.Flags().Uint64Var(&maxEvents, "max-events", 0, "keep at most `N` events")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		res, err := c.SetRetention(cmd.Context(), args[0], api.Retention{MaxAge: maxAge.s, MaxEvents: maxEvents})
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		if res.Retention == nil || (res.Retention.MaxAge == "" && res.Retention.MaxEvents == 0) {
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "store %s: retention is the server default\n", res.Store)
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "store %s: retention %s\n", res.Store, fmtRetention(res.Retention))
		return err
	}
	return cmd
}
