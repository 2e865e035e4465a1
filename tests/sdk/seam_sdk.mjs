// Drives Seam's official JavaScript SDK (`seam` on npm, which re-exports
// @seamapi/http) against the gateway.
//
// Run by tests/it/seam_sdk.rs after `npm ci --prefix tests/sdk`. Prints one JSON
// line per scenario; the Rust test asserts on them together with what the
// stand-in vendor received. Reads the same SEAM_SDK_TEST_* variables as
// seam_sdk.py.
import { readFileSync } from 'node:fs'

import { Seam, SeamHttpApiError } from 'seam'

// Neither package exports its package.json; read the installed copies.
const installedVersion = (name) =>
  JSON.parse(
    readFileSync(
      new URL(`./node_modules/${name}/package.json`, import.meta.url),
      'utf8',
    ),
  ).version
const sdkVersion = installedVersion('seam')
const httpVersion = installedVersion('@seamapi/http')

const endpoint = process.env.SEAM_SDK_TEST_ENDPOINT
const customerKeys = ['customer_a', 'customer_b']
const userKeys = ['user_1']

// A Seam client whose every response head is kept for the report. `client`
// is the SDK's public axios instance; this interceptor runs after the SDK's
// own error interceptor and only reads headers, so the SDK's error handling
// is intact.
const client = (options, last) => {
  const seam = new Seam({ endpoint, ...options })
  seam.client.interceptors.response.use(
    (response) => {
      last.headers = response.headers
      return response
    },
    (error) => {
      last.headers = error?.cause?.response?.headers ?? error?.response?.headers
      throw error
    },
  )
  return seam
}

const header = (headers, name) => {
  if (headers == null) return null
  const value =
    typeof headers.get === 'function' ? headers.get(name) : headers[name]
  return value == null ? null : String(value)
}

const report = (scenario, last, error, extra = {}) => {
  const line = {
    sdk: 'javascript',
    sdk_version: sdkVersion,
    seamapi_http_version: httpVersion,
    node_version: process.version,
    scenario,
    outcome: 'ok',
    x_request_id: header(last.headers, 'x-request-id'),
    x_erasure_decision: header(last.headers, 'x-erasure-decision'),
    content_type: header(last.headers, 'content-type'),
  }
  if (error != null) {
    const response = error?.response ?? error?.cause?.response
    Object.assign(line, {
      outcome: error instanceof SeamHttpApiError ? 'api_error' : 'other_error',
      error_class: error?.constructor?.name ?? typeof error,
      message: String(error?.message ?? error),
      status: error?.statusCode ?? response?.status ?? null,
      error_type: error?.code ?? null,
      request_id: error?.requestId ?? null,
    })
    // A raw AxiosError (the SDK did not recognise the body) carries the
    // response: show it, so a failure says what the gateway sent.
    if (!(error instanceof SeamHttpApiError) && response != null) {
      line.raw_body = JSON.stringify(response.data)?.slice(0, 500) ?? null
    }
  }
  Object.assign(line, extra)
  process.stdout.write(`${JSON.stringify(line)}\n`)
}

const deleteData = async (scenario, options) => {
  const last = {}
  try {
    const seam = client(options, last)
    const result = await seam.customers.deleteData({
      customer_keys: customerKeys,
      user_keys: userKeys,
    })
    report(scenario, last, null, { result: String(result) })
  } catch (error) {
    report(scenario, last, error)
  }
}

await deleteData('allowed', { apiKey: process.env.SEAM_SDK_TEST_OFFICER_KEY })
await deleteData('unknown_api_key', {
  apiKey: process.env.SEAM_SDK_TEST_UNKNOWN_KEY,
})
// Unlike the Python SDK, `new Seam({ personalAccessToken })` without a
// workspaceId is accepted (auth.js sends no `seam-workspace` header then;
// only Seam.fromPersonalAccessToken insists on a workspace), so this call
// really reaches the gateway without the header.
await deleteData('pat_without_workspace', {
  personalAccessToken: process.env.SEAM_SDK_TEST_OFFICER_PAT,
})
