package queue

// Stats counts what a queue did since it was created or the broker started (not kept on
// disk), for the admin plane: RabbitMQ's message_stats and its prometheus plugin's
// counters. They are plain fields updated under the queue's lock, which every counted
// operation holds anyway, so they cost an add each.
type Stats struct {
	Published    int64 // messages accepted by Publish
	Delivered    int64 // deliveries to consumers and basic.get, redeliveries included
	Redelivered  int64 // deliveries of messages delivered before
	Acked        int64 // deliveries acknowledged
	DeadLettered int64 // messages handed to the dead-letter exchange
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats
}

func (q *Queue) countDeliveryLocked(e *entry) {
	q.stats.Delivered++
	if e.redelivered {
		q.stats.Redelivered++
	}
}
