package web

import (
	"encoding/json"
	"net/http"

	"github.com/eventfold/eventfold/processor"
)

// apiError is the body of every error response.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
	// Version is the current version, on 504 waits and 409 conflicts.
	Version *int64 `json:"version,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if c, ok := body.(*processor.Customer); ok {
		// Encode without reflection.
		writeJSONBytes(w, status, c.AppendJSON(make([]byte, 0, 1024)))
		return
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(body) // the client went away; nothing left to tell it
}

// writeJSONBytes answers with body, encoded JSON, and a newline as
// json.Encoder ends its output with.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the client went away; nothing left to tell it
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, apiError{Error: code, Message: message})
}
