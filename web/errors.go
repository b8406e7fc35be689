package web

import (
	"encoding/json"
	"fmt"
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

// WriteError answers with the API's error body, {"error": code,
// "message": message}, for the handlers mounted beside the API
// (Deps.Pages), so that every answer of the server has one shape.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	writeError(w, status, code, message)
}

// WriteJSON answers with body as JSON, with the API's headers, for the
// handlers mounted beside the API (Deps.Pages).
func WriteJSON(w http.ResponseWriter, status int, body any) { writeJSON(w, status, body) }

// checkID answers 400 invalid_id, in words for the user, when id is not a
// customer id. processor.ValidateKey's errors are written for the
// dead-letter topic, with the byte that broke the rule.
func checkID(w http.ResponseWriter, id string) bool {
	if err := processor.ValidateKey(id); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_id", invalidIDMessage)
		return false
	}
	return true
}

// invalidIDMessage is the rule every customer id follows.
var invalidIDMessage = fmt.Sprintf("a customer id has 1 to %d characters, each a letter, digit, or one of . _ - :", processor.MaxKeyLength)
