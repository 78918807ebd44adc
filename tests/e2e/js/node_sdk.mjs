// Drive @segment/analytics-node against a host, as an app would: node node_sdk.mjs SPEC_JSON
//
// SPEC: {"host": URL, "writeKey": KEY, "settings": {...Analytics settings},
//        "calls": [{"method": "track", "params": {...}}, ...]}
// Every call is made at once (the SDK batches them by its own flushAt/flushInterval), then
// closeAndFlush(). Prints one JSON line per thing the SDK reports: each HTTP answer it got
// ({"kind": "http_response", "status", "retryCount"}), each failure it reports
// ({"kind": "error", "code", "reason"}), each call's outcome ({"kind": "delivered" | "failed",
// "messageId"}), and {"kind": "done"} last.
import { Analytics } from '@segment/analytics-node'

const spec = JSON.parse(process.argv[2])
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n')

const analytics = new Analytics({
  writeKey: spec.writeKey,
  host: spec.host,
  ...(spec.settings ?? {}),
})
analytics.on('http_request', (request) => {
  print({ kind: 'http_request', retryCount: request.headers['X-Retry-Count'] ?? null })
})
analytics.on('http_response', (response) => {
  print({ kind: 'http_response', status: response.status })
})
analytics.on('error', (error) => {
  print({ kind: 'error', code: error.code, reason: String(error.reason) })
})

const outcomes = spec.calls.map(
  ({ method, params }) =>
    new Promise((resolve) => {
      analytics[method](params, (error, ctx) => {
        const messageId = ctx?.event?.messageId ?? params.messageId
        print({ kind: error ? 'failed' : 'delivered', messageId, method })
        resolve()
      })
    })
)
await analytics.closeAndFlush({ timeout: spec.timeoutMs ?? 120000 })
await Promise.all(outcomes)
print({ kind: 'done' })
