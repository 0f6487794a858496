package node

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus families (docs/api.md#metrics). The
// counters and histograms are fed as things happen; the gauges of the
// log, the subscriptions and Raft are read at each scrape (a Collector),
// so a subscription's series exist exactly while it does.
type metrics struct {
	reg *prometheus.Registry

	published    *prometheus.CounterVec
	requests     *prometheus.CounterVec
	publishDur   prometheus.Histogram
	entryEvents  prometheus.Histogram
	deliveries   *prometheus.CounterVec
	deliveryDur  prometheus.Histogram
	fsmApply     prometheus.Histogram
	snapshotTime prometheus.Histogram
}

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.published = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_events_published_total", Help: "Events stored (new, not duplicates), by store; counted by the leader that committed them."}, []string{"store"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_publish_requests_total", Help: "Publish requests answered by this node, by HTTP status."}, []string{"code"})
	m.publishDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "herald_publish_duration_seconds", Help: "Publish requests from arrival to acknowledgement (or error).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	m.entryEvents = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "herald_publish_entry_events", Help: "Events per committed Raft entry (group commit).",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8)})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_deliveries_total", Help: "Delivery attempts settled by this node as leader, by store and outcome (succeeded, failed, dead, blocked)."}, []string{"store", "outcome"})
	m.deliveryDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "herald_delivery_duration_seconds", Help: "Delivery attempts, request to answer (or error).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	m.fsmApply = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "herald_fsm_apply_duration_seconds", Help: "Applying one batch of committed Raft entries to the event log (one fsynced transaction).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.snapshotTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "herald_snapshot_duration_seconds", Help: "Taking and writing one Raft snapshot.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	m.reg.MustRegister(m.published, m.requests, m.publishDur, m.entryEvents, m.deliveries, m.deliveryDur, m.fsmApply, m.snapshotTime,
		&stateCollector{n: n},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// MetricsHandler serves the node's metrics on the API's listeners (nil
// when they have a listener of their own: Config.MetricsAddr).
func (n *Node) MetricsHandler() http.Handler {
	if n.cfg.MetricsAddr != "" {
		return nil
	}
	return n.metrics.handler()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func (m *metrics) observeRaft(kind string, d time.Duration) {
	switch kind {
	case "apply":
		m.fsmApply.Observe(d.Seconds())
	case "snapshot":
		m.snapshotTime.Observe(d.Seconds())
	}
}

func (m *metrics) committed(entryEvents int, fresh map[string]int) {
	m.entryEvents.Observe(float64(entryEvents))
	for store, k := range fresh {
		m.published.WithLabelValues(store).Add(float64(k))
	}
}

func (m *metrics) attempt(store, outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(store, outcome).Inc()
	m.deliveryDur.Observe(d.Seconds())
}

// publishAnswered counts a publish request's answer (httpapi calls it).
func (m *metrics) publishAnswered(status int, d time.Duration) {
	m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	m.publishDur.Observe(d.Seconds())
}

// stateCollector reads the gauges at scrape time.
type stateCollector struct{ n *Node }

var (
	descRaftState    = prometheus.NewDesc("herald_raft_state", "This node's Raft state: 0 follower, 1 candidate, 2 leader (3 shut down).", nil, nil)
	descRaftTerm     = prometheus.NewDesc("herald_raft_term", "The current Raft term.", nil, nil)
	descCommitIndex  = prometheus.NewDesc("herald_raft_commit_index", "The highest Raft index known to be committed.", nil, nil)
	descAppliedIndex = prometheus.NewDesc("herald_raft_applied_index", "The highest Raft index applied to the event log.", nil, nil)
	descLastContact  = prometheus.NewDesc("herald_raft_last_contact_seconds", "Seconds since this node last heard from the peer: a follower's from its leader.", []string{"peer"}, nil)
	descLogEvents    = prometheus.NewDesc("herald_log_events", "Events stored in the store's log (after retention).", []string{"store"}, nil)
	descDBSize       = prometheus.NewDesc("herald_db_size_bytes", "Size of a data file.", []string{"file"}, nil)
	descLagEvents    = prometheus.NewDesc("herald_delivery_lag_events", "Events of the store not yet handed off to the subscription (last seq minus cursor).", []string{"store", "subscription"}, nil)
	descLagSeconds   = prometheus.NewDesc("herald_delivery_lag_seconds", "Age of the oldest event not yet handed off to the subscription (0 when none).", []string{"store", "subscription"}, nil)
	descRetryPending = prometheus.NewDesc("herald_delivery_retry_pending", "Deliveries waiting in the subscription's retry set.", []string{"store", "subscription"}, nil)
	descBreakerOpen  = prometheus.NewDesc("herald_subscription_breaker_open", "1 while the subscription's circuit breaker is open.", []string{"store", "subscription"}, nil)
	descInFlight     = prometheus.NewDesc("herald_deliveries_in_flight", "Delivery requests being made now.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descCommitIndex, descAppliedIndex, descLastContact,
		descLogEvents, descDBSize, descLagEvents, descLagSeconds, descRetryPending, descBreakerOpen, descInFlight} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if n.raft != nil {
		state := map[string]float64{"follower": 0, "candidate": 1, "leader": 2}[n.raft.State()]
		if s := n.raft.State(); s == "shutdown" {
			state = 3
		}
		gauge(descRaftState, state)
		gauge(descRaftTerm, float64(n.raft.Term()))
		gauge(descCommitIndex, float64(n.raft.CommitIndex()))
		gauge(descAppliedIndex, float64(n.raft.AppliedIndex()))
		if id, _ := n.raft.Leader(); id != "" && id != n.cfg.ID {
			if lc := n.raft.LastContact(); !lc.IsZero() {
				gauge(descLastContact, time.Since(lc).Seconds(), id)
			}
		}
	}
	if n.sender != nil {
		gauge(descInFlight, float64(n.sender.InFlight()))
	}
	if st, err := os.Stat(filepath.Join(n.cfg.DataDir, "events.db")); err == nil {
		gauge(descDBSize, float64(st.Size()), "events.db")
	}
	if n.raft != nil {
		if name, size, err := n.raft.LogStoreSize(); err == nil {
			gauge(descDBSize, float64(size), name) // "raft.db" or "wal"
		}
	}
	stores, err := n.db.Stores()
	if err != nil {
		return
	}
	for _, s := range stores {
		gauge(descLogEvents, float64(s.Events), s.Name)
	}
	subs, err := n.db.Subscriptions("")
	if err != nil {
		return
	}
	now := time.Now()
	for _, s := range subs {
		h, err := n.db.Health(&s)
		if err != nil {
			continue
		}
		gauge(descLagEvents, float64(h.LagEvents), s.Store, s.ID)
		age := 0.0
		if !h.OldestPendingAt.IsZero() {
			age = max(now.Sub(h.OldestPendingAt).Seconds(), 0)
		}
		gauge(descLagSeconds, age, s.Store, s.ID)
		gauge(descRetryPending, float64(h.RetryPending), s.Store, s.ID)
		open := 0.0
		if s.BreakerOpen {
			open = 1
		}
		gauge(descBreakerOpen, open, s.Store, s.ID)
	}
}
