// kafkajs side of the interop suite (run by interop_test.go with the modules setup.sh installs).
//
//   produce BOOTSTRAP TOPIC COUNT CODEC  -- keyed records PKG-<n>, JSON values, acks=all (-1)
//   consume BOOTSTRAP TOPIC COUNT        -- COUNT records from the beginning, in a fresh consumer group
//
// Both print one line per record: partition TAB offset TAB key TAB value (produce prints the
// sequence number as the value).
const path = require('path')
const modules = process.env.YARD_KAFKAJS_MODULES
const req = (name) => require(path.join(modules, name))
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = req('kafkajs')
CompressionCodecs[CompressionTypes.Snappy] = req('kafkajs-snappy')
const LZ4 = req('kafkajs-lz4')
CompressionCodecs[CompressionTypes.LZ4] = new LZ4().codec

const codecs = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4 }

async function produce (kafka, topic, count, codec) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const messages = []
  for (let i = 0; i < count; i++) {
    messages.push({ key: `PKG-${40000 + i % 10}`, value: JSON.stringify({ seq: i, status: 'SCANNED', client: 'kafkajs' }) })
  }
  const res = await producer.send({ topic, acks: -1, compression: codecs[codec], messages })
  for (const r of res) console.log(`${r.partition}\t${r.baseOffset}\t-\t-`)
  await producer.disconnect()
}

async function consume (kafka, topic, count) {
  const consumer = kafka.consumer({ groupId: `interop-${topic}-${process.pid}`, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let got = 0
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${got} of ${count} records`)), 60000)
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        console.log(`${partition}\t${message.offset}\t${message.key.toString()}\t${message.value.toString()}`)
        if (++got === count) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
}

async function main () {
  const [mode, bootstrap, topic, count, codec] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'yard-interop', brokers: [bootstrap], logLevel: logLevel.WARN })
  if (mode === 'produce') await produce(kafka, topic, Number(count), codec)
  else if (mode === 'consume') await consume(kafka, topic, Number(count))
  else throw new Error(`unknown mode ${mode}`)
}

main().catch((e) => { console.error(e); process.exit(1) })
