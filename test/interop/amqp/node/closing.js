// amqplib against yard: how connections and channels end, where amqplib's own tests found
// yard differing from RabbitMQ.
//  - confirm-close: a confirm channel closed right after publishing gets its confirms before
//    channel.close-ok; one after it would be "Frame on unknown channel", a connection error.
//  - close-in-flight: a connection closed (callback API) with publishes still in flight
//    ends cleanly: close-ok, no ECONNRESET/EPIPE.
// Prints "OK <check>" per check; exits non-zero on failure. Usage: node closing.js url
const amqp = require('amqplib');
const amqpcb = require('amqplib/callback_api');

function check(name, cond, detail) {
  if (!cond) {
    console.log(`FAIL ${name} ${JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`OK ${name}`);
}

async function confirmClose(url) {
  const conn = await amqp.connect(url);
  const errors = [];
  conn.on('error', (e) => errors.push(String(e)));
  for (let round = 0; round < 20; round++) {
    const ch = await conn.createConfirmChannel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    for (let i = 0; i < 50; i++) ch.publish('', q, Buffer.from(`m${i}`), { persistent: true });
    // amqplib ignores what comes on a closing channel before close-ok, confirms included;
    // a frame after close-ok closes the connection ("Frame on unknown channel").
    await ch.close();
  }
  const ch = await conn.createChannel(); // the connection is still fine
  await ch.assertQueue('', { exclusive: true });
  await conn.close();
  check('confirm-close', errors.length === 0, errors);
}

function closeInFlight(url) {
  return new Promise((resolve) => {
    amqpcb.connect(url, (err, conn) => {
      if (err) return check('close-in-flight', false, String(err));
      const errors = [];
      conn.on('error', (e) => errors.push(String(e)));
      conn.createChannel((err, ch) => {
        if (err) return check('close-in-flight', false, String(err));
        ch.assertQueue('', { exclusive: true }, (err, ok) => {
          if (err) return check('close-in-flight', false, String(err));
          const body = Buffer.alloc(64 * 1024, 'x');
          for (let i = 0; i < 200; i++) ch.sendToQueue(ok.queue, body);
          conn.close((err) => {
            if (err) errors.push(String(err));
            check('close-in-flight', errors.length === 0, errors);
            resolve();
          });
        });
      });
    });
  });
}

(async () => {
  const url = process.argv[2];
  await confirmClose(url);
  await closeInFlight(url);
})().catch((e) => {
  console.log(`FAIL exception ${e.stack}`);
  process.exit(1);
});
