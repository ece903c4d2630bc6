package amqp

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// dispatchLedger records who holds which route, failing on the seed's forbidden outcomes.
type dispatchLedger struct {
	t      *testing.T
	mu     sync.Mutex
	holder map[string]string
	acked  map[string]int
	seen   map[string][]string // route -> drivers that received it, with redelivered flags
	change chan struct{}
}

func (l *dispatchLedger) got(driver, route string, redelivered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.holder[route]; ok {
		l.t.Errorf("route %s delivered to %s while %s holds it", route, driver, h)
	}
	l.holder[route] = driver
	l.seen[route] = append(l.seen[route], fmt.Sprintf("%s:%v", driver, redelivered))
	select {
	case l.change <- struct{}{}:
	default:
	}
}

func (l *dispatchLedger) release(route string, acked bool) {
	l.mu.Lock()
	delete(l.holder, route)
	if acked {
		l.acked[route]++
	}
	l.mu.Unlock()
	select {
	case l.change <- struct{}{}:
	default:
	}
}

func (l *dispatchLedger) waitFor(cond func() bool) {
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-l.change:
		case <-deadline:
			l.t.Fatalf("condition not reached; acked %v holders %v", l.acked, l.holder)
		}
	}
}

// driver runs the seed's dispatch code: basicQos(1), manual ack, nack with requeue when the
// driver app cannot take the route ("nack-once" routes fail on first delivery).
func driver(t *testing.T, name, url string, l *dispatchLedger, hold bool, conns chan<- net.Conn) *amqp091.Connection {
	cfg := amqp091.Config{Dial: func(network, addr string) (net.Conn, error) {
		nc, err := net.Dial(network, addr)
		if err == nil && conns != nil {
			conns <- nc
		}
		return nc, err
	}}
	c, err := amqp091.DialConfig(url, cfg)
	must(t, err)
	ch := openCh(t, c)
	_, err = ch.QueueDeclare("route-dispatch", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Qos(1, 0, false))
	msgs, err := ch.Consume("route-dispatch", "", false, false, false, false, nil)
	must(t, err)
	go func() {
		for d := range msgs {
			route := string(d.Body)
			l.got(name, route, d.Redelivered)
			if hold {
				continue // the driver app crashed with the route in hand
			}
			if strings.HasPrefix(route, "nack-once") && !d.Redelivered {
				l.release(route, false)
				d.Nack(false, true)
				continue
			}
			l.release(route, true)
			d.Ack(false)
		}
	}()
	return c
}

// TestSeedRouteDispatch is the seed's second requirement end to end: three drivers with
// prefetch 1; one dies (its TCP connection drops) holding a route; the route is redelivered
// to another driver flagged redelivered; no route is held by two drivers at once; every route
// is acked exactly once; the queue ends empty.
func TestSeedRouteDispatch(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	l := &dispatchLedger{t: t, holder: map[string]string{}, acked: map[string]int{}, seen: map[string][]string{}, change: make(chan struct{}, 1)}
	pubConn := dial(t, url)
	pub := openCh(t, pubConn)
	_, err := pub.QueueDeclare("route-dispatch", true, false, false, false, nil)
	must(t, err)
	must(t, pub.Confirm(false))
	confirms := pub.NotifyPublish(make(chan amqp091.Confirmation, 100))
	const n = 50
	routes := make([]string, n)
	for i := range routes {
		routes[i] = fmt.Sprintf("route-%02d", i)
		if i == 7 {
			routes[i] = "nack-once-07"
		}
		must(t, pub.Publish("", "route-dispatch", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte(routes[i])}))
		if cf := <-confirms; !cf.Ack {
			t.Fatalf("publish %d nacked", i)
		}
	}

	// The doomed driver starts first and takes route-00.
	victimConn := make(chan net.Conn, 1)
	driver(t, "victim", url, l, true, victimConn)
	l.waitFor(func() bool { return l.holder["route-00"] == "victim" })
	d1 := driver(t, "driver-1", url, l, false, nil)
	d2 := driver(t, "driver-2", url, l, false, nil)
	l.waitFor(func() bool { return len(l.acked) == n-1 })
	if l.acked["route-00"] != 0 {
		t.Fatal("route-00 acked while the victim held it")
	}
	// The victim's phone dies: its TCP connection drops without a close handshake.
	l.release("route-00", false)
	(<-victimConn).Close()
	l.waitFor(func() bool { return l.acked["route-00"] == 1 })

	l.mu.Lock()
	for _, r := range routes {
		if l.acked[r] != 1 {
			t.Errorf("route %s acked %d times", r, l.acked[r])
		}
	}
	if s := l.seen["route-00"]; len(s) != 2 || s[0] != "victim:false" || !strings.HasSuffix(s[1], ":true") || strings.HasPrefix(s[1], "victim") {
		t.Errorf("route-00 deliveries %v", s)
	}
	if s := l.seen["nack-once-07"]; len(s) != 2 || !strings.HasSuffix(s[1], ":true") {
		t.Errorf("nacked route deliveries %v", s)
	}
	l.mu.Unlock()
	d1.Close()
	d2.Close()
	q, err := pub.QueueDeclarePassive("route-dispatch", true, false, false, false, nil)
	must(t, err)
	if q.Messages != 0 || q.Consumers != 0 {
		t.Fatalf("queue ends with %d messages, %d consumers", q.Messages, q.Consumers)
	}
}
