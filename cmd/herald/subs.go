package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/herald-io/herald/api"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newSubsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "subs",
		Aliases: []string{"subscriptions"},
		Short:   "manage a store's webhook subscriptions",
		Long: `Manage a store's webhook subscriptions: Herald POSTs every event of the store
whose type matches to the subscription's URL, signed (Standard Webhooks).`,
	}
	cmd.AddCommand(newSubsListCmd(), newSubsGetCmd(), newSubsCreateCmd(), newSubsUpdateCmd(),
		newSubsActionCmd("pause"), newSubsActionCmd("enable"), newSubsRotateCmd(), newSubsTestCmd(), newSubsDeleteCmd())
	return cmd
}

func newSubsListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list STORE",
		Short:   "list a store's subscriptions",
		Example: `herald subs list shop-1`,
		Args:    nargs(1, 1, "STORE"),
	}
	cons := consistencyFlag(cmd.Flags())
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		subs, err := c.Subscriptions(cmd.Context(), args[0], queryOpts(cons))
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			if subs == nil {
				subs = []api.Subscription{}
			}
			return writeJSON(w, api.SubscriptionList{Subscriptions: subs})
		}
		if len(subs) == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "no subscriptions on store %s\n", args[0])
			return nil
		}
		tw := newTable(w, "ID", "STATUS", "CURSOR", "LAG", "LAST", "ORDERED", "TYPES", "URL", "DESCRIPTION")
		for _, s := range subs {
			lag, last := "-", "-"
			if h := s.Health; h != nil {
				lag = fmt.Sprint(h.LagEvents)
				if a := h.LastAttempt; a != nil {
					last = string(a.Status)
					if a.ResponseStatus != 0 {
						last += fmt.Sprintf(" %d", a.ResponseStatus)
					}
				}
			}
			row(tw, s.ID, subStatus(&s), s.Cursor, lag, last, s.Ordered, fmtTypes(s.Types), s.URL, orDash(cut(s.Description, 40)))
		}
		return tw.Flush()
	}
	return cmd
}

func subStatus(s *api.Subscription) string {
	st := string(s.Status)
	if s.DisabledReason != "" {
		st += " (" + s.DisabledReason + ")"
	}
	return st
}

func fmtTypes(t []string) string {
	if len(t) == 0 {
		return "(all)"
	}
	return strings.Join(t, ",")
}

func newSubsGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get STORE SUB",
		Short:   "show a subscription",
		Example: `herald subs get shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR`,
		Args:    nargs(2, 2, "STORE SUB"),
	}
	cons := consistencyFlag(cmd.Flags())
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		s, err := c.Subscription(cmd.Context(), args[0], args[1], queryOpts(cons))
		if err != nil {
			return err
		}
		return printSub(cmd.OutOrStdout(), k, s)
	}
	return cmd
}

// printSub prints a subscription; the secret, in the answers to create
// and rotate, comes last, with a warning that it is not shown again.
func printSub(w io.Writer, k *conn, s *api.Subscription) error {
	if k.json() {
		return writeJSON(w, s)
	}
	kv := newKV(w)
	kv.add("id", s.ID)
	kv.add("store", s.Store)
	kv.add("url", s.URL)
	kv.add("status", subStatus(s))
	kv.add("types", fmtTypes(s.Types))
	kv.add("description", orDash(s.Description))
	kv.add("ordered", s.Ordered)
	kv.add("max in flight", s.MaxInFlight)
	rate := "none"
	if s.RateLimit > 0 {
		rate = fmt.Sprintf("%g/s", s.RateLimit)
	}
	kv.add("rate limit", rate)
	kv.add("timeout", s.Timeout)
	kv.add("retry schedule", strings.Join(s.RetrySchedule, ", "))
	kv.add("headers", orDash(strings.Join(sortedHeaders(s.Headers, s.SensitiveHeaders), ", ")))
	kv.add("disable after", s.DisableAfter)
	kv.add("cursor", s.Cursor)
	kv.add("failing since", fmtTime(s.FailingSince))
	kv.add("breaker open", s.BreakerOpen)
	if h := s.Health; h != nil {
		lag := fmt.Sprintf("%d events", h.LagEvents)
		if !h.OldestPendingAt.IsZero() {
			lag += ", oldest " + fmtTime(h.OldestPendingAt)
		}
		kv.add("lag", lag)
		kv.add("retry pending", h.RetryPending)
		last := "-"
		if a := h.LastAttempt; a != nil {
			last = fmt.Sprintf("%s, seq %d, %s", a.Status, a.Seq, fmtTime(a.At))
			if a.ResponseStatus != 0 {
				last = fmt.Sprintf("%s HTTP %d, seq %d, %s", a.Status, a.ResponseStatus, a.Seq, fmtTime(a.At))
			}
		}
		kv.add("last attempt", last)
	}
	kv.add("created", fmtTime(s.CreatedAt))
	kv.add("updated", fmtTime(s.UpdatedAt))
	if s.Secret != "" {
		kv.add("secret", s.Secret)
	}
	if err := kv.flush(); err != nil {
		return err
	}
	if s.Secret != "" {
		_, err := fmt.Fprintln(w, "The secret is shown only this once: store it now (herald subs rotate makes a new one).")
		return err
	}
	return nil
}

// subFlags are the settings create and update share.
type subFlags struct {
	url, description string
	types            []string
	ordered          bool
	disabled         bool
	maxInFlight      int
	rateLimit        float64
	timeout          durationText
	retry            durationList
	headers          headerList
	sensitive        headerList
	disableAfter     durationText
}

func (f *subFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "the endpoint: an http(s) `URL`")
	fs.StringSliceVar(&f.types, "type", nil, "deliver only events whose type matches `PATTERN` (repeat, or separate with commas; none: every type)")
	fs.BoolVar(&f.ordered, "ordered", false, "send event n+1 only after n succeeded or died")
	fs.Var(&f.retry, "retry", "retry `SCHEDULE`: delays before attempts 2, 3, … (5s,1m,10m)")
	fs.IntVar(&f.maxInFlight, "max-in-flight", 0, "at most `N` concurrent requests, 1-256 (server default 16; 1 when ordered)")
	fs.Float64Var(&f.rateLimit, "rate-limit", 0, "at most `N` deliveries per second (0: none)")
	fs.Var(&f.timeout, "timeout", "the endpoint must answer within `D` (server default 15s)")
	fs.Var(&f.headers, "header", "a static request header `NAME=VALUE` (repeat for more)")
	fs.Var(&f.sensitive, "sensitive-header", "a static header whose value is a credential, `NAME=VALUE`: sealed at rest, never shown, elided in the delivery log (NAME= keeps the value it has)")
	fs.StringVar(&f.description, "description", "", "free `TEXT`, up to 1,024 bytes")
	fs.BoolVar(&f.disabled, "disabled", false, "paused: no deliveries until herald subs enable")
	fs.Var(&f.disableAfter, "disable-after", "disable after failing continuously for `D` (server default 120h)")
}

// patch holds only the flags given (on the command line or through their
// variables).
func (f *subFlags) patch(cmd *cobra.Command) api.SubscriptionPatch {
	given := cmd.Flags().Changed
	var p api.SubscriptionPatch
	if given("url") {
		p.URL = &f.url
	}
	if given("type") {
		t := append([]string{}, f.types...)
		p.Types = &t
	}
	if given("description") {
		p.Description = &f.description
	}
	if given("disabled") {
		p.Enabled = api.Ptr(!f.disabled)
	}
	if given("ordered") {
		p.Ordered = &f.ordered
	}
	if given("max-in-flight") {
		p.MaxInFlight = &f.maxInFlight
	}
	if given("rate-limit") {
		p.RateLimit = &f.rateLimit
	}
	if given("timeout") {
		p.Timeout = &f.timeout.s
	}
	if given("retry") {
		r := append([]string{}, f.retry.list...)
		p.RetrySchedule = &r
	}
	if given("header") || given("sensitive-header") {
		h := map[string]string{}
		for k, v := range f.headers.m {
			h[k] = v
		}
		var names []string
		for k, v := range f.sensitive.m {
			h[k] = v
			names = append(names, k)
		}
		slices.Sort(names)
		p.Headers = &h
		if len(names) > 0 {
			p.SensitiveHeaders = &names
		}
	}
	if given("disable-after") {
		p.DisableAfter = &f.disableAfter.s
	}
	return p
}

func newSubsCreateCmd() *cobra.Command {
	var f subFlags
	var secret string
	var fromSeq uint64
	cmd := &cobra.Command{
		Use:   "create STORE --url URL",
		Short: "subscribe a webhook endpoint to a store (prints its secret once)",
		Long: `Subscribe a webhook endpoint to a store. Every later event whose type matches
is POSTed to the URL, signed with the subscription's secret, which the
answer shows this once (--secret sets your own; by default one is
generated). --from-seq starts the deliveries at that seq instead of the
store's end (a replay of the log).`,
		Example: `herald subs create shop-1 --url https://example.com/hooks/herald --type 'store/order/*' --retry 5s,1m,10m`,
		Args:    nargs(1, 1, "STORE"),
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&secret, "secret", "", "the signing `SECRET`: whsec_ + base64 of 24-64 bytes (default: generated)")
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 0, "deliver every event from seq `N` on (default: only events published from now)")
	markSecret(cmd.Flags(), "secret")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := required(cmd, "url"); err != nil {
			return err
		}
		req := api.SubscriptionCreate{SubscriptionPatch: f.patch(cmd)}
		if cmd.Flags().Changed("secret") {
			req.Secret = &secret
		}
		if cmd.Flags().Changed("from-seq") {
			req.FromSeq = &fromSeq
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		s, err := c.CreateSubscription(cmd.Context(), args[0], req)
		if err != nil {
			return err
		}
		return printSub(cmd.OutOrStdout(), k, s)
	}
	return cmd
}

func newSubsUpdateCmd() *cobra.Command {
	var f subFlags
	cmd := &cobra.Command{
		Use:   "update STORE SUB",
		Short: "change a subscription's settings (only the flags given)",
		Long: `Change a subscription: only the flags given change (--type "" goes back to
every type, --header "" removes the headers; --header replaces them all).
Changing a subscription restarts its delivery loop.`,
		Example: `herald subs update shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR --max-in-flight 4 --description "order sync"`,
		Args:    nargs(2, 2, "STORE SUB"),
	}
	f.add(cmd.Flags())
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p := f.patch(cmd)
		if p == (api.SubscriptionPatch{}) {
			return usagef("nothing to change: give at least one setting (--url, --type, --retry, ...)")
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		s, err := c.UpdateSubscription(cmd.Context(), args[0], args[1], p)
		if err != nil {
			return err
		}
		return printSub(cmd.OutOrStdout(), k, s)
	}
	return cmd
}

func newSubsActionCmd(action string) *cobra.Command {
	short := map[string]string{
		"pause":  "stop a subscription's deliveries (the cursor and retries stay)",
		"enable": "resume a paused or disabled subscription from its cursor",
	}[action]
	cmd := &cobra.Command{
		Use:     action + " STORE SUB",
		Short:   short,
		Example: "herald subs " + action + " shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR",
		Args:    nargs(2, 2, "STORE SUB"),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		var s *api.Subscription
		if action == "pause" {
			s, err = c.PauseSubscription(cmd.Context(), args[0], args[1])
		} else {
			s, err = c.EnableSubscription(cmd.Context(), args[0], args[1])
		}
		if err != nil {
			return err
		}
		return printSub(cmd.OutOrStdout(), k, s)
	}
	return cmd
}

func newSubsRotateCmd() *cobra.Command {
	var secret string
	var grace durationText
	cmd := &cobra.Command{
		Use:   "rotate STORE SUB",
		Short: "make a new signing secret current (prints it once); the old one signs on for --grace",
		Long: `Make a new signing secret current: --secret, or a generated one, shown this
once. The old secret keeps signing beside it for --grace (default 24h, at
most 168h; 0s: none), so receivers can switch without a gap.`,
		Example: `herald subs rotate shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR --grace 1h`,
		Args:    nargs(2, 2, "STORE SUB"),
	}
	cmd.Flags().StringVar(&secret, "secret", "", "the new `SECRET`: whsec_ + base64 of 24-64 bytes (default: generated)")
	cmd.Flags().Var(&grace, "grace", "how long the old secret keeps signing, `D` (server default 24h)")
	markSecret(cmd.Flags(), "secret")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		s, err := c.RotateSecret(cmd.Context(), args[0], args[1], api.RotateSecret{Secret: secret, Grace: grace.s})
		if err != nil {
			return err
		}
		return printSub(cmd.OutOrStdout(), k, s)
	}
	return cmd
}

func newSubsTestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test STORE SUB",
		Short: "send a herald.test event to the endpoint now and show the answer",
		Long: `Send a herald.test event (not stored, not recorded) to the subscription's
endpoint now and show the attempt: status, duration, headers, the start of
the answer's body.`,
		Example: `herald subs test shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR`,
		Args:    nargs(2, 2, "STORE SUB"),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		d, err := c.TestSubscription(cmd.Context(), args[0], args[1])
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), d)
		}
		return attemptBlock(cmd.OutOrStdout(), d)
	}
	return cmd
}

func newSubsDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete STORE SUB",
		Short:   "delete a subscription with its retries and delivery log",
		Example: `herald subs delete shop-1 sub_01KAQ3N5W3M6Q8Y1D9C2T7B4ZR`,
		Args:    nargs(2, 2, "STORE SUB"),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		if err := c.DeleteSubscription(cmd.Context(), args[0], args[1]); err != nil {
			return err
		}
		if k.json() {
			return nil // the API answers 204: nothing to print
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted subscription %s\n", args[1])
		return err
	}
	return cmd
}
