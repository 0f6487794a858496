package httpapi

// The OpenAPI document (api/openapi.json) is the API's contract. These tests
// keep it and the server from drifting apart:
//
//   - TestOpenAPIDocumentValid: the document loads and validates, and the
//     server serves it byte for byte.
//   - TestOpenAPIRoutesMatchRouter: the router's routes and the document's
//     operations are the same set.
//   - TestOpenAPISchemasMatchTypes, TestOpenAPIOperationConventions,
//     TestOpenAPIErrorResponses: the schemas have the fields of the Go
//     types in package api, every operation lists the answers every route
//     of its kind can give, and the error answers have the codes of their
//     status.
//   - Every request the package's tests make through do() goes through
//     checkedTransport (installed by TestMain), which validates the request
//     and the response against the document; a violation fails the test
//     that made the request.
//   - After the tests, TestMain fails the run if some operation was never
//     answered with a 2xx.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

func TestMain(m *testing.M) {
	// Without a loadable document nothing can be checked:
	// TestOpenAPIDocumentValid reports why, and the run fails.
	_, _, loadErr := loadContract()
	if loadErr == nil {
		testClient.Transport = &checkedTransport{base: testClient.Transport}
	}
	code := m.Run()
	if code == 0 && loadErr == nil && wholeSuiteRan() {
		if missing := unexercised(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: OpenAPI operations never answered with a 2xx by the package's tests (add a test in openapi_extra_test.go):\n\t%s\n",
				strings.Join(missing, "\n\t"))
			code = 1
		}
	}
	if o := orphans.take(); len(o) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: OpenAPI contract violations by requests not made through do():\n%s\n", strings.Join(o, "\n"))
		code = 1
	}
	os.Exit(code)
}

// wholeSuiteRan reports whether every test ran: a -run or -skip filter
// (or -list) leaves operations unexercised on purpose.
func wholeSuiteRan() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// contract is the document, loaded once.
var contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

func loadContract() (*openapi3.T, routers.Router, error) {
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
		if err != nil {
			contract.err = fmt.Errorf("api/openapi.json does not load: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contract.err = fmt.Errorf("api/openapi.json is not a valid OpenAPI document: %w", err)
			return
		}
		r, err := legacy.NewRouter(doc)
		if err != nil {
			contract.err = fmt.Errorf("api/openapi.json: router: %w", err)
			return
		}
		contract.doc, contract.router = doc, r
	})
	return contract.doc, contract.router, contract.err
}

func mustContract(t *testing.T) *openapi3.T {
	t.Helper()
	doc, _, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// testKey carries the *testing.T of the test making a request.
type testKey struct{}

// testContext is the context do() gives its requests, so checkedTransport
// can fail the test that made one.
func testContext(t *testing.T) context.Context {
	return context.WithValue(context.Background(), testKey{}, t)
}

// exercised counts, per operation ("GET /v1/stores/{store}"), the 2xx
// answers to requests the document allows.
var exercised = struct {
	sync.Mutex
	ops map[string]int
}{ops: map[string]int{}}

func unexercised() []string {
	doc, _, _ := loadContract()
	exercised.Lock()
	defer exercised.Unlock()
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if exercised.ops[method+" "+path] == 0 {
				missing = append(missing, fmt.Sprintf("%s %s (%s)", method, path, op.OperationID))
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// orphans collects violations of requests that carried no test.
var orphans collector

type collector struct {
	sync.Mutex
	msgs []string
}

func (c *collector) add(s string) { c.Lock(); c.msgs = append(c.msgs, s); c.Unlock() }

func (c *collector) take() []string {
	c.Lock()
	defer c.Unlock()
	m := c.msgs
	c.msgs = nil
	return m
}

// checkedTransport validates every request and response against the
// document. A request the document does not allow (the tests send many on
// purpose) must be answered with a 4xx; every response must match the
// document (status, headers, body); a request to a route the document does
// not have must be answered 404 or 405 with an ErrorBody.
type checkedTransport struct{ base http.RoundTripper }

func (ct *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t, _ := req.Context().Value(testKey{}).(*testing.T)
	reqBody, err := peekBody(req)
	if err != nil {
		return nil, err
	}
	resp, err := ct.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// A stream does not end: its status and headers are checked, and
		// its body goes to the test as it comes.
		x := checkExchange(req, reqBody, resp.StatusCode, resp.Header, nil)
		if x.op != "" {
			exercised.Lock()
			exercised.ops[x.op]++
			exercised.Unlock()
		}
		if len(x.problems) > 0 && t != nil {
			t.Errorf("OpenAPI contract: %s %s -> %d\n\t%s", req.Method, req.URL.Path, resp.StatusCode, strings.Join(x.problems, "\n\t"))
		}
		return resp, nil
	}
	body, readErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if readErr != nil {
		// Keep what the client would have seen: the bytes, then the error.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{readErr}))
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	x := checkExchange(req, reqBody, resp.StatusCode, resp.Header, body)
	if x.op != "" {
		exercised.Lock()
		exercised.ops[x.op]++
		exercised.Unlock()
	}
	if len(x.problems) > 0 {
		msg := fmt.Sprintf("OpenAPI contract: %s %s%s -> %d\n\trequest body: %s\n\tresponse body: %s\n\t%s",
			req.Method, req.URL.Path, query(req), resp.StatusCode, clip(reqBody), clip(bytes.TrimSpace(body)), strings.Join(x.problems, "\n\t"))
		if t != nil {
			t.Errorf("%s", msg)
		} else {
			orphans.add(msg)
		}
	}
	return resp, nil
}

// exchange is the verdict on one request and its answer.
type exchange struct {
	problems []string
	op       string // "METHOD /path" of a valid request answered 2xx as documented
}

// checkExchange judges a request (its body apart) and the answer to it.
func checkExchange(req *http.Request, reqBody []byte, status int, h http.Header, body []byte) exchange {
	doc, router, _ := loadContract()
	ctx := context.Background()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	var x exchange
	route, pathParams, routeErr := router.FindRoute(vreq)
	if routeErr != nil {
		want := http.StatusNotFound
		if pathHasOperations(router, vreq) {
			want = http.StatusMethodNotAllowed
		}
		if status != want {
			x.problems = append(x.problems, fmt.Sprintf("the document has no operation %s %s (%v), yet the server answered %d, not %d", req.Method, req.URL.Path, routeErr, status, want))
		}
		if err := checkErrorBody(doc, status, h, body); err != nil {
			x.problems = append(x.problems, err.Error())
		}
		return x
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    vreq,
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:                        true,
			SkipSettingDefaults:               true, // judge the request as sent
			RejectWhenRequestBodyNotSpecified: true,
			AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
			SchemaValidationOptions:           terse,
		},
	}
	invalid := openapi3filter.ValidateRequest(ctx, in)
	if invalid != nil && (status < 400 || status > 499) {
		x.problems = append(x.problems, fmt.Sprintf("the request violates the document, yet the server answered %d, not a 4xx: the server accepts what the contract forbids, or the document is too strict:\n\t%v", status, invalid))
	}
	if err := validateResponse(ctx, in, status, h, body); err != nil {
		x.problems = append(x.problems, fmt.Sprintf("the answer violates the document:\n\t%v", err))
	}
	if invalid == nil && len(x.problems) == 0 && status >= 200 && status <= 299 {
		x.op = route.Method + " " + route.Path
	}
	return x
}

// pathHasOperations reports whether the document has an operation for
// req's path with another method (the router then answers 405).
func pathHasOperations(router routers.Router, req *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions} {
		r := req.Clone(context.Background())
		r.Method = m
		if _, _, err := router.FindRoute(r); err == nil {
			return true
		}
	}
	return false
}

// peekBody returns the request's body, leaving req able to send it.
func peekBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return b, nil
}

// terse leaves the whole schema out of validation errors: the document is
// at hand, the message names the field.
var terse = []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()}

// validateResponse checks status, headers and body against the operation.
// A non-JSON body (the backup) is checked for its declared media type
// only, not byte by byte.
func validateResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, status int, h http.Header, body []byte) error {
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, SchemaValidationOptions: terse}
	ref := in.Route.Operation.Responses.Status(status)
	if ref == nil {
		ref = in.Route.Operation.Responses.Default()
	}
	if ref != nil && ref.Value != nil {
		ct := h.Get("Content-Type")
		mt, _, _ := mime.ParseMediaType(ct)
		switch {
		case len(ref.Value.Content) == 0:
			if len(body) > 0 || ct != "" {
				return fmt.Errorf("response %d has no content in the document, but the server sent %q with %d bytes", status, ct, len(body))
			}
		case mt != "application/json" && !strings.HasSuffix(mt, "+json"):
			if ref.Value.Content.Get(ct) == nil {
				return fmt.Errorf("response %d: Content-Type %q is not one of the document's", status, ct)
			}
			opts.ExcludeResponseBody = true
		}
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: h, Options: opts}
	rin.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(ctx, rin)
}

// checkErrorBody checks an answer to a route the document does not have:
// a JSON ErrorBody whose code goes with the status.
func checkErrorBody(doc *openapi3.T, status int, h http.Header, body []byte) error {
	if ct := h.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("error answer with Content-Type %q", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error answer is not JSON: %v", err)
	}
	if err := doc.Components.Schemas["ErrorBody"].Value.VisitJSON(v, slices.Concat(terse, []openapi3.SchemaValidationOption{openapi3.VisitAsResponse(), openapi3.MultiErrors()})...); err != nil {
		return fmt.Errorf("error answer is not an ErrorBody: %v", err)
	}
	var eb api.ErrorBody
	json.Unmarshal(body, &eb)
	if eb.Error.Code.Status() != status {
		return fmt.Errorf("error code %q goes with status %d, not %d", eb.Error.Code, eb.Error.Code.Status(), status)
	}
	return nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func query(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

func clip(b []byte) string {
	const max = 300
	if len(b) > max {
		return fmt.Sprintf("%s... (%d bytes)", b[:max], len(b))
	}
	return string(b)
}

// TestOpenAPIDocumentValid: the document loads, validates, is laid out
// with a 2-space indent, and is served byte for byte.
func TestOpenAPIDocumentValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if doc.OpenAPI != "3.0.3" || doc.Info == nil || doc.Info.Title != "Herald" || doc.Info.Version == "" || doc.Info.Description == "" {
		t.Errorf("openapi %q, info %+v: want 3.0.3, title Herald, a version and a description", doc.OpenAPI, doc.Info)
	}
	var compact, indented bytes.Buffer
	if err := json.Compact(&compact, api.OpenAPI()); err != nil {
		t.Fatal(err)
	}
	json.Indent(&indented, compact.Bytes(), "", "  ")
	indented.WriteByte('\n')
	if !bytes.Equal(indented.Bytes(), api.OpenAPI()) {
		t.Errorf("api/openapi.json is not laid out with a 2-space indent and a final newline (python3 -m json.tool --indent 2 writes it so)")
	}

	srv := newServer(t, newFake(t))
	r := do(t, srv, "GET", "/v1/openapi.json", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || !bytes.Equal(r.body, api.OpenAPI()) {
		t.Fatalf("GET /v1/openapi.json: %d %q, %d bytes; want 200 application/json, the %d bytes of api.OpenAPI()",
			r.status, r.header.Get("Content-Type"), len(r.body), len(api.OpenAPI()))
	}
}

// TestOpenAPIRoutesMatchRouter: every route the router registers is an
// operation of the document, and the other way round.
func TestOpenAPIRoutesMatchRouter(t *testing.T) {
	doc := mustContract(t)
	inRouter := map[string]bool{}
	for _, r := range New(All(newFake(t)), quiet()).Routes() {
		inRouter[r.Method+" "+r.Path] = true
	}
	inDoc := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inDoc[method+" "+path] = true
		}
	}
	for _, k := range sortedKeys(inRouter) {
		if !inDoc[k] {
			t.Errorf("the router serves %s; the document lacks it", k)
		}
	}
	for _, k := range sortedKeys(inDoc) {
		if !inRouter[k] {
			t.Errorf("the document has %s; the router does not serve it", k)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// errorResponses are the document's error answers (components/responses)
// and their statuses. Each lists every code of its status, but the 503s:
// NotReady (of /readyz) has only not_ready, Unavailable every other.
var errorResponses = map[string]int{
	"BadRequest": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404, "MethodNotAllowed": 405, "Conflict": 409, "Gone": 410,
	"PayloadTooLarge": 413, "UnsupportedMediaType": 415, "TooManyRequests": 429, "HeadersTooLarge": 431, "Internal": 500, "Unavailable": 503, "NotReady": 503,
}

// TestOpenAPIOperationConventions: every operation has an id, a summary and
// one known tag; its error answers are the shared ones of their status;
// and it lists the answers its kind of route can give: 500; 503 for a
// route whose service may lack a leader or time out (every one but health,
// the document and the backup); 400 for one with a store, a query
// parameter or a body; 413 and 415 for one with a body; 404 for one that
// names an event, subscription or member, or gets a store or its types.
func TestOpenAPIOperationConventions(t *testing.T) {
	doc := mustContract(t)
	tags := map[string]bool{}
	for _, tg := range doc.Tags {
		tags[tg.Name] = true
	}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Tags) != 1 || !tags[op.Tags[0]] {
				t.Errorf("%s: operationId %q, summary %q, tags %v: want an id, a summary and one of the document's tags", name, op.OperationID, op.Summary, op.Tags)
			}
			if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %q", name, other, op.OperationID)
			}
			ids[op.OperationID] = name
			statuses := map[int]bool{}
			for code, ref := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s: response %q: list statuses, not ranges or default", name, code)
					continue
				}
				statuses[n] = true
				if n < 400 {
					continue
				}
				rn, ok := strings.CutPrefix(ref.Ref, "#/components/responses/")
				if !ok || errorResponses[rn] != n {
					t.Errorf("%s %d: %q, want a $ref to the shared error answer of %d", name, n, ref.Ref, n)
				}
			}
			var want []int
			switch path {
			case "/healthz", "/v1/openapi.json", "/v1/self", "/readyz", "/metrics":
			case "/v1/backup":
				want = append(want, 500)
			default:
				want = append(want, 500, 503)
			}
			hasQuery := false
			for _, p := range append(append(openapi3.Parameters{}, item.Parameters...), op.Parameters...) {
				hasQuery = hasQuery || p.Value.In == openapi3.ParameterInQuery
			}
			if strings.Contains(path, "{store}") || hasQuery || op.RequestBody != nil {
				want = append(want, 400)
			}
			if op.RequestBody != nil {
				want = append(want, 413, 415)
			}
			if strings.Contains(strings.ReplaceAll(path, "{store}", ""), "{") || name == "GET /v1/stores/{store}" || name == "GET /v1/stores/{store}/types" {
				want = append(want, 404) // names a thing that may not exist
			}
			for _, s := range want {
				if !statuses[s] {
					t.Errorf("%s does not list %d", name, s)
				}
			}
		}
	}
}

// TestOpenAPIErrorResponses: each shared error answer is an ErrorBody whose
// code enum is the codes of its status (api/errors.go; see errorResponses);
// a 503 requires Retry-After, the 410 Herald-First-Seq, the 405 Allow.
func TestOpenAPIErrorResponses(t *testing.T) {
	doc := mustContract(t)
	for _, name := range sortedKeys(errorResponses) {
		status := errorResponses[name]
		ref := doc.Components.Responses[name]
		if ref == nil {
			t.Errorf("components/responses lacks %s", name)
			continue
		}
		r := ref.Value
		mt := r.Content.Get("application/json")
		if mt == nil || mt.Schema == nil || len(r.Content) != 1 {
			t.Errorf("%s: want an application/json ErrorBody only", name)
			continue
		}
		s := mt.Schema.Value
		if len(s.AllOf) != 2 || s.AllOf[0].Ref != "#/components/schemas/ErrorBody" {
			t.Errorf("%s: want allOf [ErrorBody, the codes of %d]", name, status)
			continue
		}
		var got []string
		if e := s.AllOf[1].Value.Properties["error"]; e != nil {
			if c := e.Value.Properties["code"]; c != nil {
				for _, v := range c.Value.Enum {
					got = append(got, fmt.Sprint(v))
				}
			}
		}
		var want []string
		for _, c := range api.Codes() {
			if c.Status() == status {
				want = append(want, string(c))
			}
		}
		switch name { // not_ready comes from /readyz only
		case "NotReady":
			want = []string{string(api.CodeNotReady)}
		case "Unavailable":
			want = slices.DeleteFunc(want, func(c string) bool { return c == string(api.CodeNotReady) })
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: codes %v, want %v", name, got, want)
		}
		required := map[int]string{503: api.HeaderRetryAfter, 410: api.HeaderFirstSeq, 405: "Allow"}[status]
		if h := r.Headers[required]; required != "" && (h == nil || !h.Value.Required) {
			t.Errorf("%s: want a required %s header", name, required)
		}
	}
	for name := range doc.Components.Responses {
		if _, ok := errorResponses[name]; !ok {
			t.Errorf("components/responses has %s, which this test does not know", name)
		}
	}
}

// TestOpenAPISchemasMatchTypes: each schema has exactly the JSON fields of
// its Go type; a schema of an answer requires exactly the fields that are
// always written (no omitempty/omitzero); every object refuses unknown
// fields; enums and limits are the package's constants.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := mustContract(t)
	type entry struct {
		v      any
		answer bool // written by the server: required = always present
	}
	types := map[string]entry{
		"Event": {api.Event{}, true}, "EventList": {api.EventList{}, true}, "EventPage": {api.EventPage{}, true},
		"Store": {api.Store{}, true}, "StoreList": {api.StoreList{}, true}, "Retention": {api.Retention{}, true},
		"StoreTypes": {api.StoreTypes{}, true}, "EventType": {api.EventType{}, true},
		"StoreRetention": {api.StoreRetention{}, true}, "Subscription": {api.Subscription{}, true},
		"SubscriptionList": {api.SubscriptionList{}, true}, "Delivery": {api.Delivery{}, true},
		"DeliveryPage": {api.DeliveryPage{}, true}, "EventDeliveries": {api.EventDeliveries{}, true},
		"Redelivery": {api.Redelivery{}, true}, "ReplayResult": {api.ReplayResult{}, true}, "Cluster": {api.Cluster{}, true},
		"Node": {api.Node{}, true}, "JoinResult": {api.JoinResult{}, true}, "RemoveResult": {api.RemoveResult{}, true},
		"TransferResult": {api.TransferResult{}, true}, "Health": {api.Health{}, true}, "ErrorBody": {api.ErrorBody{}, true},
		"ErrorDetail": {api.ErrorDetail{}, true},

		"NewEvent": {api.NewEvent{}, false}, "PublishBatch": {api.PublishBatch{}, false},
		"SetRetention": {api.SetRetention{}, false}, "SubscriptionCreate": {api.SubscriptionCreate{}, false},
		"SubscriptionPatch": {api.SubscriptionPatch{}, false}, "RotateSecret": {api.RotateSecret{}, false},
		"Replay": {api.Replay{}, false}, "JoinRequest": {api.JoinRequest{}, false}, "TransferRequest": {api.TransferRequest{}, false},
	}
	for _, name := range sortedKeys(types) {
		e := types[name]
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Errorf("components/schemas lacks %s", name)
			continue
		}
		s := ref.Value
		fields := jsonFields(reflect.TypeOf(e.v))
		var props, always []string
		for f, optional := range fields {
			props = append(props, f)
			if !optional {
				always = append(always, f)
			}
		}
		slices.Sort(props)
		slices.Sort(always)
		if got := sortedKeys(s.Properties); !slices.Equal(got, props) {
			t.Errorf("%s: properties %v, want the JSON fields of api.%s: %v", name, got, name, props)
		}
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has || s.AdditionalProperties.Schema != nil {
			t.Errorf("%s: want additionalProperties: false", name)
		}
		req := slices.Sorted(slices.Values(s.Required))
		if e.answer && !slices.Equal(req, always) {
			t.Errorf("%s: required %v, want the fields always written (no omitempty/omitzero): %v", name, req, always)
		}
		for _, r := range req {
			if _, ok := fields[r]; !ok {
				t.Errorf("%s: requires %q, which api.%s does not have", name, r, name)
			}
		}
	}

	enum := func(schema *openapi3.Schema) []string {
		var out []string
		for _, v := range schema.Enum {
			out = append(out, fmt.Sprint(v))
		}
		slices.Sort(out)
		return out
	}
	strs := func(vs ...string) []string { slices.Sort(vs); return vs }
	sch := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	prop := func(name, p string) *openapi3.Schema { return sch(name).Properties[p].Value }
	param := func(name string) *openapi3.Schema { return doc.Components.Parameters[name].Value.Schema.Value }
	var codes []string
	for _, c := range api.Codes() {
		codes = append(codes, string(c))
	}
	checks := []struct {
		what      string
		got, want []string
	}{
		{"ErrorCode", enum(sch("ErrorCode")), strs(codes...)},
		{"consistency", enum(param("Consistency")), strs(string(api.ConsistencyLocal), string(api.ConsistencyLeader), string(api.ConsistencyLinearizable))},
		{"Subscription.status", enum(prop("Subscription", "status")), strs(string(api.StatusActive), string(api.StatusPaused), string(api.StatusDisabled))},
		{"Subscription.disabled_reason", enum(prop("Subscription", "disabled_reason")), strs(api.DisabledGone, api.DisabledRequested, api.DisabledFailing)},
		{"?status", enum(param("DeliveryStatus")), strs(string(api.DeliverySucceeded), string(api.DeliveryFailed), string(api.DeliveryDead), string(api.DeliveryPending))},
		{"Redelivery.status", enum(prop("Redelivery", "status")), strs(string(api.DeliveryPending))},
	}
	for _, c := range checks {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: enum %v, want %v", c.what, c.got, c.want)
		}
	}
	states := enum(prop("Node", "state"))
	for _, s := range []string{api.StateLeader, api.StateFollower, api.StateCandidate, api.StateUnreachable, api.StateUnknown} {
		if !slices.Contains(states, s) {
			t.Errorf("Node.state: enum %v lacks %q", states, s)
		}
	}
	num := func(f *float64) float64 {
		if f == nil {
			return -1
		}
		return *f
	}
	limit := param("Limit")
	if num(limit.Min) != 1 || num(limit.Max) != api.MaxLimit || limit.Default != float64(api.DefaultLimit) {
		t.Errorf("limit: %v-%v default %v, want 1-%d default %d", num(limit.Min), num(limit.Max), limit.Default, api.MaxLimit, api.DefaultLimit)
	}
	if ev := prop("PublishBatch", "events"); ev.MaxItems == nil || *ev.MaxItems != api.MaxBatchEvents {
		t.Errorf("PublishBatch.events: maxItems %v, want %d", ev.MaxItems, api.MaxBatchEvents)
	}
	if ts := prop("StoreTypes", "types"); ts.MaxItems == nil || *ts.MaxItems != hlog.MaxTypesPerStore {
		t.Errorf("StoreTypes.types: maxItems %v, want %d", ts.MaxItems, hlog.MaxTypesPerStore)
	}
}

// jsonFields maps the JSON field names of a struct type to whether they
// are optional (omitempty or omitzero), descending into embedded structs.
func jsonFields(typ reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && !hasTag {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range jsonFields(ft) {
				out[k] = v
			}
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		optional := false
		for _, o := range strings.Split(opts, ",") {
			optional = optional || o == "omitempty" || o == "omitzero"
		}
		out[name] = optional
	}
	return out
}

// TestOpenAPICheckerCatchesViolations: the checks themselves report an
// answer that breaks the contract, an invalid request answered 2xx, and a
// bad answer on a route the document lacks.
func TestOpenAPICheckerCatchesViolations(t *testing.T) {
	mustContract(t)
	check := func(method, target, reqBody string, status int, respBody string) exchange {
		req, _ := http.NewRequest(method, "http://herald"+target, strings.NewReader(reqBody))
		if reqBody != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return checkExchange(req, []byte(reqBody), status, http.Header{"Content-Type": {"application/json"}}, []byte(respBody))
	}
	event := `{"id":"e1","store":"s","seq":1,"type":"t","timestamp":"2026-01-01T00:00:00Z","version":"1","data":null,"hash":"` + strings.Repeat("a", 64) + `"}`
	if x := check("GET", "/v1/stores/s/events/e1", "", 200, event); len(x.problems) > 0 || x.op != "GET /v1/stores/{store}/events/{id}" {
		t.Fatalf("a valid exchange: %+v", x)
	}
	if x := check("POST", "/v1/stores/s/events", `{"type":"t"}`, 400, `{"error":{"code":"invalid_event","message":"m"}}`); len(x.problems) > 0 || x.op != "" {
		t.Fatalf("an invalid request answered 400: %+v", x)
	}
	bad := []struct {
		name, method, target, reqBody string
		status                        int
		respBody                      string
	}{
		{"extra field", "GET", "/v1/stores/s/events/e1", "", 200, strings.Replace(event, `"data"`, `"colour":1,"data"`, 1)},
		{"missing field", "GET", "/v1/stores/s/events/e1", "", 200, strings.Replace(event, `"version":"1",`, ``, 1)},
		{"undocumented status", "GET", "/v1/stores/s/events/e1", "", 409, `{"error":{"code":"conflict","message":"m"}}`},
		{"code of another status", "GET", "/v1/stores/s/events/e1", "", 404, `{"error":{"code":"invalid_json","message":"m"}}`},
		{"invalid request answered 2xx", "POST", "/v1/stores/s/events", `{"type":"t"}`, 201, event},
		{"invalid request answered 5xx", "GET", "/v1/stores/s/events?limit=0", "", 500, `{"error":{"code":"internal","message":"m"}}`},
		{"unknown route, not an ErrorBody", "GET", "/v2/x", "", 404, `{"error":"nope"}`},
		{"unknown route, 2xx", "GET", "/v2/x", "", 200, `{}`},
		{"wrong method, 404", "DELETE", "/v1/stores/s/events", "", 404, `{"error":{"code":"not_found","message":"m"}}`},
	}
	for _, tc := range bad {
		if x := check(tc.method, tc.target, tc.reqBody, tc.status, tc.respBody); len(x.problems) == 0 || x.op != "" {
			t.Errorf("%s: not reported (%+v)", tc.name, x)
		}
	}
}
