package web

import (
	"encoding/json"
	"net/http"
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
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(body) // the client went away; nothing left to tell it
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, apiError{Error: code, Message: message})
}
