// Package console_test drives the web console (internal/admin/console) in headless Chromium
// (Debian's package, installed by setup.sh) against a real `yard serve` holding live data
// from real clients: franz-go producing to a topic with a lagging consumer group, amqp091-go
// publishing to a queue. It loads each page, waits for the data to show, performs the
// actions, and writes a PNG screenshot of each page to $YARD_SCREENSHOT_DIR (or a temporary
// directory).
package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

var chromium string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	env, err := harness.RunSetup(filepath.Join(filepath.Dir(file), "setup.sh"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "console interop:", err)
		os.Exit(1)
	}
	chromium = env["CHROMIUM"]
	os.Exit(m.Run())
}

const (
	topic     = "orders"
	groupName = "billing"
	queueName = "tasks"
	queued    = 25
)

func TestConsole(t *testing.T) {
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Kafka: a topic with three partitions, a group that consumed some and committed less,
	// and a producer that keeps writing while the pages are open (live rates, growing lag).
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(n int) {
		t.Helper()
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte(fmt.Sprintf("order %d: %064d", i, i))}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(300)
	consumeAndCommitSome(ctx, t, y.KafkaAddr)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	everyTick(&wg, stop, func() bool {
		recs := make([]*kgo.Record, 20)
		for i := range recs {
			recs[i] = &kgo.Record{Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte(fmt.Sprintf("live %d", i))}
		}
		_ = cl.ProduceSync(ctx, recs...).FirstErr()
		return true
	})
	defer func() { close(stop); wg.Wait() }()

	// AMQP: a queue with messages, the connection kept open.
	conn, err := amqp.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queueName, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for i := range queued {
		if err := ch.PublishWithContext(ctx, "", queueName, false, false, amqp.Publishing{Body: []byte("task " + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}

	// And live AMQP traffic through another queue with a consumer (publish and deliver rates).
	live, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.QueueDeclare("events", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := live.Consume("events", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range deliveries { // until the connection closes
		}
	}()
	everyTick(&wg, stop, func() bool {
		for i := range 10 {
			if live.PublishWithContext(ctx, "", "events", false, false, amqp.Publishing{Body: []byte("event " + strconv.Itoa(i))}) != nil {
				return false // the console closed the connection
			}
		}
		return true
	})

	shots := os.Getenv("YARD_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := browser(ctx, t)
	base := "http://" + y.HTTPAddr + "/console/"
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	screenshot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			path := filepath.Join(shots, name+".png")
			t.Logf("screenshot %s", path)
			return os.WriteFile(path, png, 0o644)
		})
	}
	// polled waits until the page has drawn n more polls and then until cond holds.
	wait := func(cond string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(time.Minute))
	}
	// click clicks the element sel names from inside the page, once it exists: the console
	// redraws its tables on every poll, so a node looked up first and clicked after can be
	// gone by then ("Could not find node with given id").
	click := func(sel string) chromedp.Action[chromedp.Void] {
		q := fmt.Sprintf("document.querySelector(%q)", sel)
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := wait(q+" !== null")(ctx, tg); err != nil {
				return err
			}
			_, err := chromedp.Evaluate[chromedp.Void](q+".click()")(ctx, tg)
			return err
		})
	}
	polls := func(n int) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			now, err := chromedp.Evaluate[int](`Number(document.body.dataset.polls || 0)`)(ctx, tg)
			if err != nil {
				return err
			}
			_, err = wait(fmt.Sprintf(`Number(document.body.dataset.polls || 0) >= %d`, now+n))(ctx, tg)
			return err
		})
	}

	// Log in through the login page: a wrong password is refused, the right one leads to the
	// console with a session cookie.
	run("login refused",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/console/login"]`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "guest"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "wrong"),
		chromedp.Click(chromedp.CSS(`#login`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`#login-error`)),
		wait(`document.querySelector("#login-error").textContent.includes("Login failed")`),
		screenshot("login-failed"),
	)
	run("open the overview",
		// The refused login answered a fresh, empty form.
		chromedp.SendKeys(chromedp.CSS(`#username`), "guest"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "guest"),
		chromedp.Click(chromedp.CSS(`#login`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`#nav`)),
		wait(`document.querySelector("#user").textContent === "guest"`),
		wait(`document.querySelector("#c-kafka canvas") !== null`),
		polls(4),
		// orders, and __consumer_offsets once the group has committed.
		wait(`[...document.querySelectorAll(".tile")].some(e => e.textContent.includes("Topics") && Number(e.querySelector(".value").textContent) >= 1)`),
		screenshot("overview"),
	)
	run("topics",
		chromedp.Navigate(base+"#/topics"),
		wait(`document.querySelectorAll('.topic[data-topic="orders"] tbody tr').length === 3`),
		// Internal topics are left out by default and shown, marked, on demand.
		wait(`document.querySelector('.topic[data-topic="__consumer_offsets"]') === null`),
		polls(1),
		screenshot("topics"),
		click(`#toggle-internal`),
		wait(`document.querySelector('.topic[data-topic="__consumer_offsets"] .badge.internal') !== null`),
		wait(`document.querySelector('.topic[data-topic="orders"] .badge.internal') === null`),
		click(`#toggle-internal`),
		wait(`document.querySelector('.topic[data-topic="__consumer_offsets"]') === null`),
	)
	lagCond := `Number(document.querySelector("#group-lag .value")?.textContent || 0) > 0`
	run("group lag",
		chromedp.Navigate(base+"#/groups"),
		wait(`document.querySelector('tr[data-group="billing"] .lag .badge.warn') !== null`),
		chromedp.Navigate(base+"#/groups/billing"),
		wait(lagCond),
		wait(`document.querySelectorAll('tr[data-partition]').length === 3`),
		polls(3),
		screenshot("group"),
	)
	depth := func(n int) string {
		return fmt.Sprintf(`document.querySelector('tr[data-queue="tasks"] .depth')?.textContent === "%d"`, n)
	}
	run("queue depth, purge",
		chromedp.Navigate(base+"#/queues"),
		wait(depth(queued)),
		polls(2),
		screenshot("queues"),
		click(`button[data-action="purge-queue"][data-name="tasks"]`),
		wait(depth(0)),
		screenshot("queues-purged"),
	)
	if n, err := ch.QueueDeclarePassive(queueName, true, false, false, false, nil); err != nil || n.Messages != 0 {
		t.Fatalf("after purge from the console: %+v, %v", n, err)
	}

	// Reset the (memberless) group's offsets to the log end: the lag falls to what was
	// produced since.
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	confirmDialogs(b)
	run("reset offsets",
		chromedp.Navigate(base+"#/groups/billing"),
		wait(lagCond),
		click(`button[data-action="reset-group"][data-to="latest"]`),
		wait(`document.querySelector(".toast:not(.error)")?.textContent.includes("reset")`),
	)
	offs, err := adm.FetchOffsets(ctx, groupName)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if o, ok := offs.Lookup(topic, e.Partition); !ok || o.At < e.Offset {
			t.Errorf("partition %d's committed offset after a reset to latest: %+v, want at least %d", e.Partition, o, e.Offset)
		}
	})

	run("connections, close",
		chromedp.Navigate(base+"#/connections"),
		wait(`[...document.querySelectorAll("tr[data-connection]")].some(r => r.textContent.includes("AMQP 0-9-1"))`),
		screenshot("connections"),
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("tr[data-connection]")].find(r => r.textContent.includes("AMQP 0-9-1")).querySelector("button").click()`),
	)
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("the AMQP connection closed from the console stayed open")
	}

	// Log out: back to the login page, and the old cookie opens nothing.
	var sessionID string
	run("the session cookie", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		if err != nil {
			return err
		}
		for _, c := range res.Cookies {
			if c.Name == "yard_session" {
				if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" {
					return fmt.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c)
				}
				sessionID = c.Value
			}
		}
		if sessionID == "" {
			return fmt.Errorf("no yard_session cookie in %d cookies", len(res.Cookies))
		}
		return nil
	}))
	if code := apiStatus(t, y.HTTPAddr, sessionID); code != http.StatusOK {
		t.Fatalf("GET /api/overview with the browser's session cookie: %d", code)
	}
	run("logout",
		chromedp.Navigate(base+"#/"),
		chromedp.WaitVisible(chromedp.CSS(`#logout`)),
		chromedp.Click(chromedp.CSS(`#logout`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/console/login"]`)),
		screenshot("logged-out"),
	)
	if code := apiStatus(t, y.HTTPAddr, sessionID); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/overview with the session cookie after logout: %d, want 401", code)
	}
}

// apiStatus is the status of GET /api/overview with a session cookie.
func apiStatus(t *testing.T, addr, session string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/overview", nil)
	req.AddCookie(&http.Cookie{Name: "yard_session", Value: session})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// consumeAndCommitSome consumes from the topic as the group and commits about a third of
// what it read, then leaves: the group stays with committed offsets and lag.
func consumeAndCommitSome(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(groupName), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []*kgo.Record
	for len(got) < 300 && ctx.Err() == nil {
		got = append(got, c.PollFetches(ctx).Records()...)
	}
	byPart := map[int32][]*kgo.Record{}
	for _, r := range got {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	var commit []*kgo.Record
	for _, rs := range byPart {
		commit = append(commit, rs[:len(rs)/3]...)
	}
	if err := c.CommitRecords(ctx, commit...); err != nil {
		t.Fatal(err)
	}
}

// browser starts headless Chromium with a fresh profile.
func browser(ctx context.Context, t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel2)
	return bctx
}

// confirmDialogs accepts every confirm() the page opens.
func confirmDialogs(b context.Context) {
	dialogs := chromedp.Events(b, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			go func() {
				_, _ = chromedp.Call(b, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}()
}

// everyTick runs f in wg every 200ms, the live traffic the console shows, until stop is
// closed or f returns false.
func everyTick(wg *sync.WaitGroup, stop <-chan struct{}, f func() bool) {
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if !f() {
					return
				}
			}
		}
	})
}
