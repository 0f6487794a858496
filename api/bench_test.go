package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-io/herald/api"
)

// The client's own cost per publish, against a node stand-in that
// answers at once with a canned body of the right size: what herald bench
// pays on the client side, compared with a bare net/http request carrying
// a pre-built body (the benchmark's former way).

func cannedServer(b *testing.B, events int) *httptest.Server {
	answer := func(data string) string {
		ev := `{"id":"evt_01KBENCHBENCHBENCHBENCHBENC","store":"bench","seq":1,"type":"bench/order/created","timestamp":"2026-12-01T10:00:00.123456789Z","version":"1",` +
			data + `"hash":"` + strings.Repeat("a", 64) + `"}`
		if events == 1 {
			return ev
		}
		return `{"events":[` + strings.TrimSuffix(strings.Repeat(ev+",", events), ",") + `]}`
	}
	full, minimal := answer(`"data":"`+strings.Repeat("x", 510)+`",`), answer("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		if r.Header.Get("Prefer") == "return=minimal" {
			io.WriteString(w, minimal)
		} else {
			io.WriteString(w, full)
		}
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchEvents(n int) []api.NewEvent {
	data := json.RawMessage(`"` + strings.Repeat("x", 510) + `"`)
	evs := make([]api.NewEvent, n)
	for i := range evs {
		evs[i] = api.NewEvent{Type: "bench/order/created", Data: data}
	}
	return evs
}

func BenchmarkClientPublish(b *testing.B) { benchClient(b, 1, false) }

func BenchmarkClientPublishBatch100(b *testing.B) { benchClient(b, 100, false) }

// BenchmarkClientPublishBatch100WithoutData is what herald bench does.
func BenchmarkClientPublishBatch100WithoutData(b *testing.B) { benchClient(b, 100, true) }

func benchClient(b *testing.B, n int, withoutData bool) {
	srv := cannedServer(b, n)
	c, err := api.NewClient(api.Config{Addresses: []string{srv.URL}, MaxRetries: -1, PublishWithoutData: withoutData})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents(n)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n == 1 {
			_, err = c.Publish(ctx, "bench", evs[0])
		} else {
			_, err = c.PublishBatch(ctx, "bench", evs)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawPublish(b *testing.B) { benchRaw(b, 1) }

func BenchmarkRawPublishBatch100(b *testing.B) { benchRaw(b, 100) }

func benchRaw(b *testing.B, n int) {
	srv := cannedServer(b, n)
	var body []byte
	if n == 1 {
		body, _ = json.Marshal(benchEvents(1)[0])
	} else {
		body, _ = json.Marshal(api.PublishBatch{Events: benchEvents(n)})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/stores/bench/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
