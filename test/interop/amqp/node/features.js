// amqplib against yard: a confirm channel publishes to a fanout exchange bound to two queues,
// a consumer with prefetch acks what it gets, a nack requeues, and a headers exchange routes.
// Prints "OK <check>" per check; exits non-zero on failure. Usage: node features.js url
const amqp = require('amqplib');

function check(name, cond, detail) {
  if (!cond) {
    console.log(`FAIL ${name} ${JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`OK ${name}`);
}

(async () => {
  const conn = await amqp.connect(process.argv[2]);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange('js.fan', 'fanout', { durable: false });
  const a = (await ch.assertQueue('', { exclusive: true })).queue;
  const b = (await ch.assertQueue('', { exclusive: true })).queue;
  await ch.bindQueue(a, 'js.fan', '');
  await ch.bindQueue(b, 'js.fan', '');
  for (let i = 0; i < 10; i++) ch.publish('js.fan', '', Buffer.from(`m${i}`), { persistent: true });
  await ch.waitForConfirms();
  check('confirms', true);
  const qa = await ch.checkQueue(a);
  check('fanout-a', qa.messageCount === 10, qa);
  await ch.prefetch(2);
  const got = [];
  let nacked = false;
  await new Promise((resolve) => {
    ch.consume(b, (msg) => {
      const body = msg.content.toString();
      if (body === 'm3' && !nacked) {
        nacked = true;
        ch.nack(msg, false, true);
        return;
      }
      got.push(body + (msg.fields.redelivered ? '*' : ''));
      ch.ack(msg);
      if (got.length === 10) resolve();
    });
  });
  check('consume-all', got.length === 10 && got.includes('m3*'), got);
  await ch.assertExchange('js.hdr', 'headers', { durable: false });
  const h = (await ch.assertQueue('', { exclusive: true })).queue;
  await ch.bindQueue(h, 'js.hdr', '', { 'x-match': 'all', region: 'eu', kind: 'van' });
  ch.publish('js.hdr', '', Buffer.from('yes'), { headers: { region: 'eu', kind: 'van' } });
  ch.publish('js.hdr', '', Buffer.from('no'), { headers: { region: 'eu', kind: 'bike' } });
  await ch.waitForConfirms();
  const m = await ch.get(h, { noAck: true });
  const none = await ch.get(h, { noAck: true });
  check('headers-route', m && m.content.toString() === 'yes' && none === false, [m && m.content.toString(), none]);
  await conn.close();
})().catch((e) => {
  console.log(`FAIL exception ${e.stack}`);
  process.exit(1);
});
