package httpapi

import (
	"net/http"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/julienschmidt/httprouter"
)

func (a *API) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if err := a.svc.Cluster.Ready(r.Context()); err != nil {
		w.Header().Set(api.HeaderRetryAfter, "1")
		writeErrorBody(w, api.CodeNotReady, err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, []byte(`{"status":"ready"}`+"\n"))
}

func (a *API) cluster(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	info, err := a.svc.Cluster.Cluster(r.Context(), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	if info.Nodes == nil {
		info.Nodes = []api.Node{}
	}
	a.writeJSON(w, r, http.StatusOK, info)
}

func (a *API) join(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	// A join answers once the new node has caught up with the log, which
	// may take longer than the server's write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Time{})
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req api.JoinRequest
	if err := decodeStrict(body, &req, api.CodeInvalidMember); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.svc.Cluster.Join(r.Context(), req); err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, api.JoinResult{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Voter: req.Voter == nil || *req.Voter})
}

func (a *API) remove(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id := ps.ByName("id")
	if err := a.svc.Cluster.Remove(r.Context(), id); err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, api.RemoveResult{Removed: id})
}

func (a *API) transfer(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req api.TransferRequest
	if err := decodeOptional(body, &req, api.CodeInvalidMember); err != nil {
		a.writeError(w, r, err)
		return
	}
	leader, err := a.svc.Cluster.TransferLeader(r.Context(), req.To)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, api.TransferResult{Leader: leader})
}

// backupWriteTimeout bounds each write of a backup stream (and of an
// event stream).
const backupWriteTimeout = 30 * time.Second

// deadlineWriter sets the connection's write deadline before each write;
// Interrupt makes a write in progress fail now.
type deadlineWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	per time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.rc.SetWriteDeadline(time.Now().Add(d.per))
	return d.w.Write(p)
}

func (d *deadlineWriter) Interrupt() { d.rc.SetWriteDeadline(time.Now()) }

// backup streams this node's event log. Headers go out before the copy, so
// a failure midway can only cut the stream short: the handler then aborts
// the connection so the client sees an error rather than a clean end, and
// `herald backup` checks the file it received before keeping it.
func (a *API) backup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="herald-backup.db"`)
	// Its own write deadline: however large the file, each write must
	// finish within backupWriteTimeout, so a reader that stops reading
	// lets go of the log's read transaction.
	n, err := a.svc.Backup.Backup(r.Context(), &deadlineWriter{w: w, rc: http.NewResponseController(w), per: backupWriteTimeout})
	if err != nil {
		if n == 0 {
			w.Header().Del("Content-Disposition")
			a.writeError(w, r, err)
			return
		}
		a.log.Error("backup stream failed midway", "bytes", n, "error", err)
		panic(http.ErrAbortHandler) // abort the connection: the client sees a truncated body, not a valid file
	}
}
