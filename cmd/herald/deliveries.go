package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/spf13/cobra"
)

func newDeliveriesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "a subscription's delivery log: list, get, redeliver, replay",
		Long: `A subscription's delivery log: every attempt, the dead deliveries and the
retry set; redeliver one event; replay the log from a seq or a time.`,
	}
	cmd.AddCommand(newDeliveriesListCmd(), newDeliveriesGetCmd(), newRedeliverCmd(), newReplayCmd())
	return cmd
}

func newDeliveriesListCmd() *cobra.Command {
	var after uint64
	var limit int
	status := newEnum("", "succeeded", "failed", "pending", "dead")
	cmd := &cobra.Command{
		Use:   "list STORE SUB",
		Short: "list a subscription's delivery attempts, dead deliveries or retry set",
		Long: `List a subscription's delivery log, oldest first: every attempt, or with
--status succeeded/failed those attempts; --status dead the last attempt of
every dead delivery, --status pending the retry set (both by seq). The
command then says, on stderr, the --after of the next page when there is
one.`,
		Example: `herald deliveries list shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR --status dead`,
		Args:    nargs(2, 2, "STORE SUB"),
	}
	cmd.Flags().Var(status, "status", "only `STATUS`: succeeded, failed, pending or dead")
	cmd.Flags().Uint64Var(&after, "after", 0, "entries after `N` (an attempt id; a seq with --status dead or pending)")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most `N` entries, 1-1000 (server default 100)")
	cons := consistencyFlag(cmd.Flags())
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		page, err := c.Deliveries(cmd.Context(), args[0], args[1], api.DeliveryQuery{
			Status: api.DeliveryStatus(status.val), After: after, Limit: limit, Consistency: api.Consistency(cons.val)})
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			if page.Deliveries == nil {
				page.Deliveries = []api.Delivery{}
			}
			return writeJSON(w, page)
		}
		if len(page.Deliveries) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "no deliveries")
		} else if status.val == string(api.DeliveryPending) {
			tw := newTable(w, "EVENT_ID", "SEQ", "STATUS", "ATTEMPTS", "NEXT_ATTEMPT", "MANUAL", "LAST_ERROR")
			for _, d := range page.Deliveries {
				row(tw, d.EventID, d.Seq, d.Status, d.Attempts, fmtTime(d.NextAttemptAt), d.Manual, orDash(cut(d.LastError, 60)))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		} else {
			tw := newTable(w, "ID", "EVENT_ID", "SEQ", "ATTEMPT", "STATUS", "AT", "DURATION", "RESPONSE", "NEXT_ATTEMPT")
			for _, d := range page.Deliveries {
				row(tw, attemptID(&d), d.EventID, d.Seq, attemptNo(&d), d.Status, fmtTime(d.At), fmtMS(d.DurationMS), response(&d), fmtTime(d.NextAttemptAt))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if page.Next != 0 {
			cmdline := fmt.Sprintf("herald deliveries list %s %s --after %d", args[0], args[1], page.Next)
			if status.val != "" {
				cmdline += " --status " + status.val
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "next page: %s\n", cmdline)
		}
		return nil
	}
	return cmd
}

// attemptID is "-" for the entries that have none (dead deliveries' last
// attempts as listed by seq).
func attemptID(d *api.Delivery) string {
	if d.ID == 0 {
		return "-"
	}
	return fmt.Sprint(d.ID)
}

func attemptNo(d *api.Delivery) string {
	s := fmt.Sprint(d.Attempt)
	if d.Manual {
		s += " (manual)"
	}
	return s
}

func fmtMS(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return (time.Duration(ms * float64(time.Millisecond))).Round(100 * time.Microsecond).String()
}

// response is an attempt's outcome in a few words: the HTTP status, or
// the transport error.
func response(d *api.Delivery) string {
	switch {
	case d.Error != "":
		return cut(d.Error, 50)
	case d.ResponseStatus != 0:
		return fmt.Sprint(d.ResponseStatus)
	}
	return "-"
}

// attemptBlock shows an attempt in full: request and response headers and
// the recorded body.
func attemptBlock(w io.Writer, d *api.Delivery) error {
	title := fmt.Sprintf("attempt %d", d.Attempt)
	if d.ID != 0 {
		title += fmt.Sprintf(" (id %d)", d.ID)
	}
	if d.Manual {
		title += ", manual"
	}
	fmt.Fprintf(w, "%s: %s\n", title, strings.ToUpper(string(d.Status)))
	kv := newKV(w)
	if d.Seq != 0 {
		kv.add("  event", fmt.Sprintf("%s (seq %d)", d.EventID, d.Seq))
	} else {
		kv.add("  event", d.EventID+" (a test, not stored)")
	}
	kv.add("  at", fmtTime(d.At))
	kv.add("  duration", fmtMS(d.DurationMS))
	if d.ResponseStatus != 0 {
		kv.add("  response status", d.ResponseStatus)
	}
	if d.Error != "" {
		kv.add("  error", d.Error)
	}
	if !d.NextAttemptAt.IsZero() {
		kv.add("  next attempt", fmtTime(d.NextAttemptAt))
	}
	if err := kv.flush(); err != nil {
		return err
	}
	block := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(w, "  %s:\n", title)
		for _, l := range lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	block("request headers", sortedHeaders(d.RequestHeaders))
	block("response headers", sortedHeaders(d.ResponseHeaders))
	if d.ResponseBody != "" {
		block("response body", strings.Split(strings.TrimRight(d.ResponseBody, "\n"), "\n"))
	}
	return nil
}

func newDeliveriesGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get STORE SUB EVENT_ID",
		Short:   "show every attempt to deliver one event, with headers and bodies",
		Example: `herald deliveries get shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR evt_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR`,
		Args:    nargs(3, 3, "STORE SUB EVENT_ID"),
	}
	cons := consistencyFlag(cmd.Flags())
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		ed, err := c.EventDeliveries(cmd.Context(), args[0], args[1], args[2], queryOpts(cons))
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			if ed.Attempts == nil {
				ed.Attempts = []api.Delivery{}
			}
			return writeJSON(w, ed)
		}
		if len(ed.Attempts) == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "no attempts for event %s\n", ed.EventID)
			return nil
		}
		for i := range ed.Attempts {
			if i > 0 {
				fmt.Fprintln(w)
			}
			if err := attemptBlock(w, &ed.Attempts[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return cmd
}

func newRedeliverCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redeliver STORE SUB EVENT_ID",
		Short: "deliver one event of the store again, now, whatever its outcome so far",
		Example: `herald deliveries redeliver shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR evt_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR
# queued evt_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR (seq 42) for sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR, due 2026-11-23T11:00:00.000+01:00`,
		Args: nargs(3, 3, "STORE SUB EVENT_ID"),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		r, err := c.Redeliver(cmd.Context(), args[0], args[1], args[2])
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), r)
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "queued %s (seq %d) for %s, due %s\n", r.EventID, r.Seq, r.SubscriptionID, fmtTime(r.NextAttemptAt))
		return err
	}
	return cmd
}

func newReplayCmd() *cobra.Command {
	var fromSeq uint64
	var since timeValue
	only := newEnum("", "dead")
	cmd := &cobra.Command{
		Use:   "replay STORE SUB (--from-seq N | --since TIME) [--only dead]",
		Short: "deliver the store's events again from a seq or a time (or only the dead ones)",
		Long: `Deliver a store's events again, straight from the log, however old: the
subscription's cursor moves back to --from-seq, or to the first event at or
after --since (RFC 3339). With --only dead, only the dead deliveries from
there on go back into the retry set.`,
		Annotations: map[string]string{annUsage: "STORE SUB --from-seq N [--only dead]\nSTORE SUB --since TIME [--only dead]"},
		Example:     `herald deliveries replay shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR --since 2026-11-20T00:00:00Z --only dead`,
		Args:        nargs(2, 2, "STORE SUB"),
	}
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 0, "replay from seq `N` (at least 1)")
	cmd.Flags().Var(&since, "since", "replay from the first event at or after `TIME` (RFC 3339: 2026-11-20T00:00:00Z)")
	cmd.Flags().Var(only, "only", "only the dead deliveries: `dead`")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := exclusive(cmd, "from-seq", "since"); err != nil {
			return err
		}
		if !cmd.Flags().Changed("from-seq") && !cmd.Flags().Changed("since") {
			return usagef("give --from-seq or --since")
		}
		if cmd.Flags().Changed("from-seq") && fromSeq == 0 {
			return usagef("%s must be at least 1", flagRef(cmd, "from-seq"))
		}
		r := api.Replay{FromSeq: fromSeq, Only: only.val}
		if !since.t.IsZero() {
			r.Since = since.t.Format(time.RFC3339Nano)
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		res, err := c.Replay(cmd.Context(), args[0], args[1], r)
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		what := "log positions"
		switch {
		case only.val == "dead" && res.Queued == 1:
			what = "dead delivery"
		case only.val == "dead":
			what = "dead deliveries"
		case res.Queued == 1:
			what = "log position"
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "replaying from seq %d: %d %s queued\n", res.FromSeq, res.Queued, what)
		return err
	}
	return cmd
}
