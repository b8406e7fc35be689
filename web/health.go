package web

import "net/http"

type readiness struct {
	Ready   bool     `json:"ready"`
	Missing []string `json:"missing,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is 200 only when every check holds; it names the ones that fail.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	body := readiness{Ready: true}
	for _, c := range s.checks {
		if !c.Ready() {
			body.Ready = false
			body.Missing = append(body.Missing, c.Name)
		}
	}
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}
