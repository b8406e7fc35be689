package deploy_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestKubernetesPartitioned checks deploy/k8s/partitioned: a StatefulSet
// of `serve --serve-mode partitioned` whose pods advertise their stable
// names under a headless Service, which keeps not-ready pods reachable
// (every pod is briefly not ready during a rebalance, and forwards must
// still reach the owner), and a Service for clients.
func TestKubernetesPartitioned(t *testing.T) {
	code := readCode(t)
	for _, v := range []string{"EVENTFOLD_SERVE_MODE", "EVENTFOLD_ADVERTISED_URL", "EVENTFOLD_STANDBY_REPLICAS", "EVENTFOLD_INSTANCE_ID"} {
		if !slices.Contains(code.envVars, v) {
			t.Fatalf("serve.go has no flag for %s", v)
		}
	}
	files, err := filepath.Glob(filepath.Join("k8s", "partitioned", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s/partitioned: %v", err)
	}
	var sts map[string]any
	services := map[string]map[string]any{}
	for _, f := range files {
		for _, doc := range yamlDocs(t, f) {
			switch str(doc["kind"]) {
			case "StatefulSet":
				sts = doc
			case "Service":
				services[str(get(doc, "metadata", "name"))] = doc
			}
		}
	}
	if sts == nil {
		t.Fatal("deploy/k8s/partitioned has no StatefulSet")
	}
	peersName := str(get(sts, "spec", "serviceName"))
	peers := services[peersName]
	if peers == nil || str(get(peers, "spec", "clusterIP")) != "None" || get(peers, "spec", "publishNotReadyAddresses") != true {
		t.Fatalf("the StatefulSet's serviceName %q must be a headless Service (clusterIP None) with publishNotReadyAddresses", peersName)
	}
	if len(services) < 2 {
		t.Error("want a Service for clients beside the headless one")
	}
	pod := get(sts, "spec", "template")
	podLabels, _ := get(pod, "metadata", "labels").(map[string]any)
	selectors := map[string]any{"the StatefulSet": get(sts, "spec", "selector", "matchLabels")}
	for name, svc := range services {
		selectors["Service "+name] = get(svc, "spec", "selector")
		if sp := get(svc, "spec", "ports", 0); str(get(sp, "port")) != code.httpPort || str(get(sp, "targetPort")) != "http" {
			t.Errorf("Service %s port %v: want %s to targetPort http", name, sp, code.httpPort)
		}
	}
	for what, sel := range selectors {
		checkSelects(t, what, sel, podLabels)
	}

	c := get(pod, "spec", "containers", 0)
	var args []string
	for _, a := range list(get(c, "args")) {
		args = append(args, str(a))
	}
	if got := flagValue(args, "--serve-mode"); got != "partitioned" {
		t.Errorf("args %v: --serve-mode %q, want partitioned", args, got)
	}
	if got, want := flagValue(args, "--advertised-url"), "http://$(POD_NAME)."+peersName+":"+code.httpPort; got != want {
		t.Errorf("--advertised-url %q, want %q: the pod's stable name under the headless Service", got, want)
	}
	// Standbys are other pods: at most replicas - 1 of them.
	replicas, _ := strconv.Atoi(str(get(sts, "spec", "replicas")))
	if n, err := strconv.Atoi(flagValue(args, "--standby-replicas")); err != nil || n < 1 || n > replicas-1 {
		t.Errorf("--standby-replicas %q: want 1 to replicas - 1 (%v), so that a restarting pod's reads are answered", flagValue(args, "--standby-replicas"), get(sts, "spec", "replicas"))
	}
	podName, instanceID := false, false
	for _, e := range list(get(c, "env")) {
		fromName := str(get(e, "valueFrom", "fieldRef", "fieldPath")) == "metadata.name"
		podName = podName || str(get(e, "name")) == "POD_NAME" && fromName
		instanceID = instanceID || str(get(e, "name")) == "EVENTFOLD_INSTANCE_ID" && fromName
	}
	if !podName {
		t.Error("the container has no env POD_NAME from metadata.name, which --advertised-url expands")
	}
	// A pod's stable name makes it a static member of the group: a
	// restart costs no rebalance.
	if !instanceID {
		t.Error("the container has no env EVENTFOLD_INSTANCE_ID from metadata.name: a pod's restart would cost two rebalances")
	}
	// Each pod's share of the table is on a volume of its own.
	dataDir := flagValue(args, "--data-dir")
	claim := str(get(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name"))
	mounted := false
	for _, m := range list(get(c, "volumeMounts")) {
		mounted = mounted || str(get(m, "mountPath")) == dataDir && str(get(m, "name")) == claim
	}
	if dataDir == "" || claim == "" || !mounted {
		t.Errorf("--data-dir %q must be mounted from a volumeClaimTemplate (%q)", dataDir, claim)
	}
	if str(get(c, "readinessProbe", "httpGet", "path")) != code.readyPath {
		t.Errorf("readinessProbe %v, want GET %s", get(c, "readinessProbe"), code.readyPath)
	}
	// It shares deploy/k8s's settings.
	cm := yamlDoc(t, "k8s", "configmap.yaml")
	if got := str(get(c, "envFrom", 0, "configMapRef", "name")); got != str(get(cm, "metadata", "name")) {
		t.Errorf("envFrom %q, want the ConfigMap of deploy/k8s", got)
	}
}
