package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// getCluster reads GET /cluster through in, failing on anything but a 200.
func getCluster(t *testing.T, in *instance) web.ClusterView {
	t.Helper()
	resp := getWithToken(t, in.url+"/cluster", partitionedToken)
	var c web.ClusterView
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &c) != nil {
		t.Fatalf("GET /cluster through %s: %d %s", in.url, resp.status, resp.body)
	}
	return c
}

// clusterSettled reports what still differs between c, read through
// self, and the live instances: every instance reachable and ready, each
// partition owned by the instance that holds it with one other standing
// by, and every copy's lag read and 0 (the fold is done).
func clusterSettled(c web.ClusterView, self *instance, live []*instance, partitions int32) string {
	if c.Mode != "partitioned" || c.Self != self.url || !c.Complete || c.ReadAt == nil {
		return "the header: mode, self, complete or membership_read_at"
	}
	if len(c.Instances) != len(live) || len(c.Partitions) != int(partitions) {
		return "the number of instances or partitions"
	}
	for _, got := range c.Instances {
		i := slices.IndexFunc(live, func(in *instance) bool { return in.url == got.URL })
		if i < 0 || !got.Reachable || !got.Ready || got.Keys == nil || got.Self != (got.URL == self.url) {
			return "instance " + got.URL
		}
		if !slices.Equal(got.Owned, live[i].svc.View.Owned()) || len(got.Standby) == 0 {
			return "the partitions of " + got.URL
		}
	}
	for p, got := range c.Partitions {
		owner, _ := ownerOf(live, probeKey(int32(p), partitions), partitions)
		if got.Partition != int32(p) || owner == nil || got.Owner != owner.url || got.OwnerLag == nil || *got.OwnerLag != 0 {
			return "the owner of a partition"
		}
		if len(got.Standbys) != 1 || got.Standbys[0].URL == got.Owner || got.Standbys[0].Lag == nil || *got.Standbys[0].Lag != 0 {
			return "the standby of a partition"
		}
	}
	return ""
}

// probeKey returns a customer id of partition p.
func probeKey(p, partitions int32) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("probe-%d", i)
		if processor.PartitionFor(id, partitions) == p {
			return id
		}
	}
}

// TestClusterStatusShowsEveryInstance runs three partitioned instances
// with a standby each on kfake, and reads GET /cluster through each: the
// three instances, which one answered, every partition's owner and
// standby with their lag. After one instance stops, the others answer
// 200 throughout and show it unreachable, then gone, with its partitions
// moved to the survivors.
func TestClusterStatusShowsEveryInstance(t *testing.T) {
	t.Parallel()
	const partitions = 6
	broker, topics, live := startSplit(t, partitions, 3, 1)
	lines := testkit.Generate(7, 60, 240)
	produceRecords(t, broker, topics.Events, 30*time.Second, lineRecords(lines))
	want := testkit.ReferenceFold(t, lines)
	live[0].client.AwaitFold(t, want, 60*time.Second)

	for _, in := range live {
		deadline := time.Now().Add(30 * time.Second)
		for {
			c := getCluster(t, in)
			diff := clusterSettled(c, in, live, partitions)
			if diff == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /cluster through %s: %s differs from the instances: %+v", in.url, diff, c)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	b := uiOpen(t, uiChromium(t), live[0].url)
	if os.Getenv("EVENTFOLD_README_SCREENSHOTS") == "1" {
		b.shots = filepath.Join(testkit.RepoRoot(t), "docs", "screenshots") // the README's cluster-*.png
	}
	b.step("the cluster in the operations view", func() {
		b.do(chromedp.Navigate(live[0].url+"/ui/icon.svg"),
			chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('eventfold.token', `+uiJS(partitionedToken)+`)`),
			chromedp.Navigate(live[0].url+"/#/operations"))
		b.wait("every instance with its partitions and lag", uiClusterShows(live[0], live, partitions))
		b.do(uiScrollTo("cluster-card"))
		b.shot("cluster-1280")
		b.do(chromedp.EmulateViewport(390, 844))
		b.wait("no horizontal scroll at 390 px", uiNoHorizontalScroll+` && `+uiClusterShows(live[0], live, partitions))
		b.do(uiScrollTo("cluster-card"))
		b.shot("cluster-390")
		b.do(chromedp.EmulateViewport(1280, 900))
	})

	stopped := live[2]
	stopAt := time.Now()
	stopped.stop()
	stoppedIn := time.Since(stopAt)
	live = live[:2]
	// The group lists the stopped instance until it has rebalanced, some
	// seconds: the page, polling every 2 s, shows it unreachable meanwhile.
	b.step("a stopped instance shown unreachable", func() {
		b.wait("the unreachable badge", fmt.Sprintf(`(r => r && r.dataset.reachable === 'false' && r.querySelector('.badge-bad').textContent === 'unreachable' && `+
			`r.querySelector('.cluster-error').textContent !== '')(document.querySelector(%s))`, uiJS(`#ops-cluster tr[data-url="`+stopped.url+`"]`)))
		b.do(uiScrollTo("cluster-card"))
		b.shot("cluster-unreachable")
	})
	sawUnreachable := false
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := getCluster(t, live[0]) // a 200 every time, or the test fails
		i := slices.IndexFunc(c.Instances, func(in web.ClusterInstance) bool {
			return in.URL == stopped.url
		})
		if i >= 0 {
			if got := c.Instances[i]; got.Reachable || got.Error == "" {
				t.Fatalf("the stopped instance %s is shown reachable: %+v", stopped.url, got)
			}
			sawUnreachable = true
		}
		if i < 0 && clusterSettled(c, live[0], live, partitions) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /cluster after %s stopped did not settle on the survivors: %+v", stopped.url, c)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the stopped instance stopped in %s, was shown unreachable before it left the group: %v, and the survivors settled %s after the stop began",
		stoppedIn.Round(time.Millisecond), sawUnreachable, time.Since(stopAt).Round(time.Millisecond))
	b.step("the cluster after an instance stopped", func() {
		b.wait("the survivors with every partition", uiClusterShows(live[0], live, partitions))
	})
	b.checkClean()
}

// uiScrollTo scrolls the element with id to the top of the screen, below
// the top bar, for a screenshot.
func uiScrollTo(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.scrollTo(0, document.getElementById(%s).getBoundingClientRect().top + scrollY - 70)`, uiJS(id)))
}

// uiClusterShows is the JS predicate that the page's cluster table shows
// the live instances, self marked, each with the partitions it holds and
// a standby copy of each partition elsewhere, every lag 0.
func uiClusterShows(self *instance, live []*instance, partitions int32) string {
	var checks []string
	for _, in := range live {
		row := fmt.Sprintf(`document.querySelector(%s)`, uiJS(`#ops-cluster tr[data-url="`+in.url+`"]`))
		owned := strings.Trim(strings.ReplaceAll(fmt.Sprint(in.svc.View.Owned()), " ", ","), "[]")
		checks = append(checks, fmt.Sprintf(`(r => r && r.dataset.reachable === 'true' && r.dataset.self === '%v' && `+
			`[...r.querySelectorAll('.copy.owner')].map(e => e.dataset.partition).join() === '%s' && r.querySelectorAll('.copy.standby').length > 0)(%s)`,
			in == self, owned, row))
	}
	checks = append(checks, fmt.Sprintf(`document.querySelectorAll('#ops-cluster tr').length === %d`, len(live)),
		fmt.Sprintf(`document.querySelectorAll('#ops-cluster .copy.owner').length === %d`, partitions),
		fmt.Sprintf(`document.querySelectorAll('#ops-cluster .copy.standby').length === %d`, partitions),
		`[...document.querySelectorAll('#ops-cluster .copy')].every(e => e.dataset.lag === '0')`,
		`document.getElementById('cluster-summary').textContent.startsWith('`+fmt.Sprint(len(live))+` instances, `+fmt.Sprint(partitions)+` partitions, partitioned')`)
	return strings.Join(checks, " && ")
}

// TestClusterStatusOfAReplica reads GET /cluster of a replica: itself
// alone, serving every partition from its view, each lag read and 0 once
// the view has the fold.
func TestClusterStatusOfAReplica(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	p.produceAndAwaitFold(t, testkit.Generate(9, 20, 60), 30*time.Second)
	var c web.ClusterView
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := p.client.Get(t, p.client.Base+"/cluster")
		if status != http.StatusOK || json.Unmarshal(body, &c) != nil {
			t.Fatalf("GET /cluster: %d %s", status, body)
		}
		settled := len(c.Partitions) == int(p.topics.Partitions) && len(c.Instances) == 1 && c.Instances[0].Self && c.Instances[0].Reachable
		for i, part := range c.Partitions {
			settled = settled && part.Partition == int32(i) && part.Owner == c.Self && part.OwnerLag != nil && *part.OwnerLag == 0
		}
		if c.Mode == "replica" && c.ReadAt == nil && settled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /cluster of a replica: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
