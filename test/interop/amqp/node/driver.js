// The seed's route-dispatch driver written with amqplib, for yard's interop tests.
// Usage: node driver.js url mode; mode "work" or "hold" (see java/.../Driver.java: same
// protocol). Prints READY, "GOT route redelivered", "ACK route", "NACK route".
const amqp = require('amqplib');

(async () => {
  const [url, mode] = process.argv.slice(2);
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  await ch.assertQueue('route-dispatch', { durable: true });
  await ch.prefetch(1);
  await ch.consume('route-dispatch', (msg) => {
    const route = msg.content.toString();
    console.log(`GOT ${route} ${msg.fields.redelivered}`);
    if (mode === 'hold') return;
    if (route.startsWith('nack-once') && !msg.fields.redelivered) {
      ch.nack(msg, false, true);
      console.log(`NACK ${route}`);
      return;
    }
    ch.ack(msg);
    console.log(`ACK ${route}`);
  }, { noAck: false });
  console.log('READY');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
