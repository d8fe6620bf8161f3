/**
 * Raw requests for the differential conformance run (conformance.mjs): each is sent byte for byte on a fresh
 * connection to every proxy, and what the client got is set beside what the backend received. Most are
 * malformed or ambiguous per RFC 9112 / RFC 9110; a few well-formed rows are baselines, so a proxy that
 * refuses everything does not look conformant.
 *
 * `expect` is what RFC 9112 asks of a gateway, used to flag rows: `refuse` (a 4xx/5xx, nothing forwarded),
 * `forward` (forwarded once, answered 200) or `either` (the RFC leaves a choice; the peers are the reference).
 */
const H = 'Host: example.test\r\n';

export const CASES = [
  // Baselines.
  { name: 'GET, HTTP/1.1', bytes: `GET /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'forward' },
  { name: 'GET, HTTP/1.0', bytes: 'GET /ok HTTP/1.0\r\n\r\n', expect: 'forward' },
  { name: 'POST with Content-Length', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 5\r\n\r\nhello`, expect: 'forward' },
  { name: 'POST chunked', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'forward' },
  { name: 'chunk extension', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n`, expect: 'forward' },
  { name: 'chunked with a trailer field', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n`, expect: 'forward' },
  { name: 'an empty line before the request line (RFC 9112 §2.2)', bytes: `\r\nGET /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'forward' },
  { name: 'obs-text in a field value', bytes: `GET /ok HTTP/1.1\r\n${H}X-Latin: caf\xe9\r\nConnection: close\r\n\r\n`, expect: 'forward' },
  { name: 'absolute-form matching Host', bytes: `GET http://example.test/ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'forward' },
  { name: 'Transfer-Encoding: Chunked (case)', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'forward' },
  { name: 'GET with a Content-Length body', bytes: `GET /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 5\r\n\r\nhello`, expect: 'forward' },
  { name: 'a method outside llhttp\'s list (FOO)', bytes: `FOO /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'either' },
  { name: 'PURGE (a common cache method)', bytes: `PURGE /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'either' },
  { name: 'HTTP/1.2 (a later minor version)', bytes: `GET /ok HTTP/1.2\r\n${H}Connection: close\r\n\r\n`, expect: 'either' },
  { name: 'empty Host', bytes: 'GET /ok HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n', expect: 'either' },
  { name: 'Host with a port', bytes: 'GET /ok HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n', expect: 'forward' },
  { name: 'Host an IPv6 literal', bytes: 'GET /ok HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n', expect: 'forward' },

  // Request line.
  { name: 'lower-case method', bytes: `get /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'either' },
  // RFC 9112 §3: a recipient MAY split the request line on whitespace; the forwarded line is rebuilt either way.
  { name: 'two spaces after the method', bytes: `GET  /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'either' },
  { name: 'a space inside the target', bytes: `GET /o k HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a tab inside the target', bytes: `GET /o\tk HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a control byte (0x01) in the target', bytes: `GET /o\x01k HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'DEL (0x7f) in the target', bytes: `GET /o\x7fk HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'raw UTF-8 bytes in the target', bytes: `GET /caf\xc3\xa9 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'either' },
  { name: 'trailing space after the version', bytes: `GET /ok HTTP/1.1 \r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'lower-case version (http/1.1)', bytes: `GET /ok http/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'HTTP/1.10', bytes: `GET /ok HTTP/1.10\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'HTTP/3.0', bytes: `GET /ok HTTP/3.0\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a CR alone ending the request line', bytes: `GET /ok HTTP/1.1\r${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'authority-form with GET', bytes: `GET example.test:80 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'absolute-form with a dot segment (see --verbose: forwarded as sent?)', bytes: `GET http://example.test/a/%2e%2e/b HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'forward' },
  { name: 'absolute-form with userinfo', bytes: `GET http://user@example.test/ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'either' },
  { name: 'absolute-form with an ftp scheme', bytes: `GET ftp://example.test/ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: 'either' },
  { name: 'a request line of only spaces', bytes: '   \r\n\r\n', expect: 'refuse' },
  { name: 'a TLS ClientHello on the plain port', bytes: '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03', expect: 'refuse' },

  // Field lines.
  { name: 'whitespace between name and colon', bytes: `GET /ok HTTP/1.1\r\nHost : example.test\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a field line without a colon', bytes: `GET /ok HTTP/1.1\r\n${H}NoColon\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'an empty field name', bytes: `GET /ok HTTP/1.1\r\n${H}: v\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a non-token byte (@) in a field name', bytes: `GET /ok HTTP/1.1\r\n${H}X@Y: v\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a first field line starting with whitespace', bytes: `GET /ok HTTP/1.1\r\n X-Lead: v\r\n${H}Connection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'NUL in a field value', bytes: `GET /ok HTTP/1.1\r\n${H}X-Nul: a\x00b\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a CR alone in a field value', bytes: `GET /ok HTTP/1.1\r\n${H}X-Cr: a\rb\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a control byte (0x01) in a field value', bytes: `GET /ok HTTP/1.1\r\n${H}X-Ctl: a\x01b\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  // RFC 9110 §5.5: field-vchar is VCHAR / obs-text; DEL is neither.
  { name: 'DEL in a field value', bytes: `GET /ok HTTP/1.1\r\n${H}X-Del: a\x7fb\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  { name: 'a field line with a bare LF inside the head', bytes: `GET /ok HTTP/1.1\r\n${H}X-Lf: a\nConnection: close\r\n\r\n`, expect: 'refuse' },
  { name: '2,500 small fields (under the byte limit)', bytes: `GET /ok HTTP/1.1\r\n${H}${'a: b\r\n'.repeat(2_500)}Connection: close\r\n\r\n`, expect: 'either' },
  { name: 'Host with a space', bytes: 'GET /ok HTTP/1.1\r\nHost: exa mple.test\r\nConnection: close\r\n\r\n', expect: 'refuse' },
  { name: 'Host with a slash', bytes: 'GET /ok HTTP/1.1\r\nHost: example.test/evil\r\nConnection: close\r\n\r\n', expect: 'refuse' },
  { name: 'Host with userinfo', bytes: 'GET /ok HTTP/1.1\r\nHost: user@example.test\r\nConnection: close\r\n\r\n', expect: 'refuse' },
  { name: 'Host with a non-numeric port', bytes: 'GET /ok HTTP/1.1\r\nHost: example.test:http\r\nConnection: close\r\n\r\n', expect: 'refuse' },

  // Content-Length.
  { name: 'Content-Length: +5', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: +5\r\n\r\nhello`, expect: 'refuse' },
  { name: 'Content-Length: -1', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: -1\r\n\r\nhello`, expect: 'refuse' },
  { name: 'Content-Length: 0x5', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 0x5\r\n\r\nhello`, expect: 'refuse' },
  { name: 'Content-Length: 5 5', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 5 5\r\n\r\nhello`, expect: 'refuse' },
  { name: 'Content-Length: 5, 5 (a list of one value)', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 5, 5\r\n\r\nhello`, expect: 'either' },
  { name: 'Content-Length twice, same value', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, expect: 'either' },
  { name: 'Content-Length empty', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length:\r\n\r\nhello`, expect: 'refuse' },
  { name: 'Content-Length: 005 (leading zeros)', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 005\r\n\r\nhello`, expect: 'either' },
  { name: 'Content-Length beyond 2^64', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 99999999999999999999999\r\n\r\nhello`, expect: 'refuse' },
  { name: 'Content-Length with a trailing tab', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 5\t\r\n\r\nhello`, expect: 'forward' },

  // Transfer-Encoding and chunked framing.
  { name: 'Transfer-Encoding before Content-Length', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, expect: 'refuse' },
  { name: 'Transfer-Encoding: identity', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello`, expect: 'refuse' },
  { name: 'Transfer-Encoding: xchunked', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'refuse' },
  { name: 'Transfer-Encoding split over two fields (gzip, then chunked)', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'refuse' },
  { name: 'Transfer-Encoding empty', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\nhello`, expect: 'refuse' },
  { name: 'Transfer-Encoding with a vertical tab', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: \x0bchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'refuse' },
  { name: 'chunk size with a 0x prefix', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, expect: 'refuse' },
  { name: 'chunk size beyond 2^64', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n`, expect: 'refuse' },
  { name: 'chunk data longer than its size', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`, expect: 'refuse' },
  { name: 'chunk size line ending in a bare LF', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`, expect: 'refuse' },
  { name: 'chunk size with a space before the extension', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n`, expect: 'either' },
  { name: 'a control byte in a chunk extension', bytes: `POST /ok HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01=b\r\nhello\r\n0\r\n\r\n`, expect: 'refuse' },

  // Connection and persistence.
  { name: 'HTTP/1.0 with Connection: keep-alive', bytes: 'GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', expect: 'forward' },
  { name: 'Connection naming an end-to-end field (X-Secret)', bytes: `GET /ok HTTP/1.1\r\n${H}X-Secret: s\r\nConnection: close, X-Secret\r\n\r\n`, expect: 'forward' },
  // What a forwarded request carries (see --verbose): the client's X-Forwarded-For and Via extended, not replaced.
  { name: 'X-Forwarded-For and Via from the client', bytes: `GET /ok HTTP/1.1\r\n${H}X-Forwarded-For: 203.0.113.7\r\nVia: 1.1 edge-cdn\r\nConnection: close\r\n\r\n`, expect: 'forward' },
  { name: 'TE: trailers and Proxy-Connection from the client', bytes: `GET /ok HTTP/1.1\r\n${H}TE: trailers\r\nProxy-Connection: keep-alive\r\nConnection: close, TE\r\n\r\n`, expect: 'forward' },
  { name: 'an h2c upgrade (not WebSocket)', bytes: `GET /ok HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n`, expect: 'forward' },
  { name: 'the HTTP/2 connection preface', bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: 'refuse' },
  { name: 'Expect: 100-continue on a GET without a body', bytes: `GET /ok HTTP/1.1\r\n${H}Expect: 100-continue\r\nConnection: close\r\n\r\n`, expect: 'forward' },
  { name: 'Expect: something-else', bytes: `GET /ok HTTP/1.1\r\n${H}Expect: something-else\r\nConnection: close\r\n\r\n`, expect: 'refuse' },
  // RFC 9112 §9.6: a client may half-close after its last request (HTTP/1.0 tools, `nc -N`, scripts); the
  // answer is still owed. `halfClose` sends the bytes and FIN together; `/slow` answers after 200 ms.
  { name: 'half-close right after the request', bytes: `GET /ok HTTP/1.1\r\n${H}\r\n`, halfClose: true, expect: 'either' },
  { name: 'half-close, backend answers after 200 ms', bytes: `GET /slow HTTP/1.1\r\n${H}\r\n`, halfClose: true, expect: 'either' },
  { name: 'half-close after two pipelined requests', bytes: `GET /ok HTTP/1.1\r\n${H}\r\nGET /ok2 HTTP/1.1\r\n${H}\r\n`, halfClose: true, expect: 'either', requests: 2 },
  { name: 'half-close after an HTTP/1.0 request', bytes: 'GET /slow HTTP/1.0\r\n\r\n', halfClose: true, expect: 'either' },
  { name: 'half-close after a POST', bytes: `POST /slow HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`, halfClose: true, expect: 'either' },
  { name: 'half-close inside the request head', bytes: `GET /ok HTTP/1.1\r\n${H}`, halfClose: true, expect: 'refuse' },
  { name: 'half-close inside a Content-Length body', bytes: `POST /ok HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\nhello`, halfClose: true, expect: 'refuse' },
  {
    name: 'pipelined: a body longer than Content-Length smuggling a second request',
    bytes: `POST /ok HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhelloGET /smuggled HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    expect: 'forward',
    requests: 2,
  },
];

/**
 * Raw backend answers, for the response half of the run: the client sends an ordinary `GET /case` (or HEAD)
 * and the backend answers it with exactly these bytes (closing after them when `close` is set); the client
 * then asks `GET /next` on the same connection, if it is still open, to see that the connection survived
 * with its framing intact. `expect`: `relay` (the client gets the answer, correctly framed), `502` (the
 * gateway refuses it: RFC 9112 §6.3 and RFC 9110 §15.6.3), or `either`.
 */
const OK = 'HTTP/1.1 200 OK\r\n';
export const RESPONSE_CASES = [
  { name: 'Content-Length', bytes: `${OK}Content-Length: 5\r\n\r\nhello`, expect: 'relay' },
  { name: 'chunked', bytes: `${OK}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'relay' },
  { name: 'no length, then close (read until close)', bytes: `${OK}\r\nhello`, close: true, expect: 'relay' },
  { name: 'HTTP/1.0, no length, then close', bytes: 'HTTP/1.0 200 OK\r\n\r\nhello', close: true, expect: 'relay' },
  { name: 'no reason phrase', bytes: 'HTTP/1.1 200 \r\nContent-Length: 5\r\n\r\nhello', expect: 'relay' },
  { name: 'no reason phrase and no space', bytes: 'HTTP/1.1 200\r\nContent-Length: 5\r\n\r\nhello', expect: 'either' },
  { name: 'two differing Content-Length fields', bytes: `${OK}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, expect: '502' },
  { name: 'Content-Length and chunked together', bytes: `${OK}Content-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'either' },
  { name: 'Content-Length: abc', bytes: `${OK}Content-Length: abc\r\n\r\nhello`, expect: '502' },
  { name: 'a four-digit status', bytes: 'HTTP/1.1 2000 OK\r\nContent-Length: 5\r\n\r\nhello', expect: '502' },
  { name: 'not HTTP at all', bytes: 'hello there\r\n\r\n', close: true, expect: '502' },
  { name: 'nothing, then close', bytes: '', close: true, expect: '502' },
  { name: 'NUL in a field value', bytes: `${OK}X-Nul: a\x00b\r\nContent-Length: 5\r\n\r\nhello`, expect: '502' },
  { name: 'a control byte (0x01) in a field value', bytes: `${OK}X-Ctl: a\x01b\r\nContent-Length: 5\r\n\r\nhello`, expect: 'either' },
  { name: 'status 099', bytes: 'HTTP/1.1 099 Odd\r\nContent-Length: 5\r\n\r\nhello', expect: '502' },
  { name: 'status 600', bytes: 'HTTP/1.1 600 Odd\r\nContent-Length: 5\r\n\r\nhello', expect: 'either' },
  { name: 'a reason phrase with a control byte', bytes: 'HTTP/1.1 200 O\x01K\r\nContent-Length: 5\r\n\r\nhello', expect: 'either' },
  { name: 'a chunked answer of unknown length with a bad header (streamed path)', bytes: `${OK}X-Ctl: a\x01b\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'either' },
  { name: 'obs-fold (must be refused or unfolded, RFC 9112 §5.2)', bytes: `${OK}X-Fold: a\r\n b\r\nContent-Length: 5\r\n\r\nhello`, expect: 'either' },
  { name: 'bare LF line endings', bytes: 'HTTP/1.1 200 OK\nContent-Length: 5\n\nhello', expect: 'either' },
  // Too late for a 502 once the head went out: the client must see the truncation (no complete-looking body).
  { name: 'a body shorter than Content-Length, then close', bytes: `${OK}Content-Length: 10\r\n\r\nhello`, close: true, truncated: true, expect: 'either' },
  { name: 'chunked cut off mid-body, then close', bytes: `${OK}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`, close: true, truncated: true, expect: 'either' },
  { name: 'bytes after a Content-Length body', bytes: `${OK}Content-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmugl`, expect: 'relay' },
  { name: '204 with a body', bytes: 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello', expect: 'either' },
  { name: '304 with Content-Length and no body', bytes: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n', expect: 'relay' },
  // An HTTP/1.0 client cannot read chunked: the body must reach it close-delimited (or with a length).
  { name: 'chunked, to an HTTP/1.0 client', http10: true, bytes: `${OK}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'relay' },
  { name: 'HEAD answered with Content-Length', head: true, bytes: `${OK}Content-Length: 5\r\n\r\n`, expect: 'relay' },
  { name: '103 Early Hints before the 200', bytes: `HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n${OK}Content-Length: 5\r\n\r\nhello`, expect: 'relay' },
  { name: 'an unasked 100 Continue before the 200', bytes: `HTTP/1.1 100 Continue\r\n\r\n${OK}Content-Length: 5\r\n\r\nhello`, expect: 'relay' },
  { name: '101 Switching Protocols to a plain GET', bytes: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n', expect: '502' },
  { name: 'Connection: close from the backend', bytes: `${OK}Connection: close\r\nContent-Length: 5\r\n\r\nhello`, close: true, expect: 'relay' },
  { name: 'hop-by-hop fields (Keep-Alive, Connection: X-Internal)', bytes: `${OK}Keep-Alive: timeout=5\r\nConnection: X-Internal\r\nX-Internal: secret\r\nProxy-Connection: keep-alive\r\nContent-Length: 5\r\n\r\nhello`, expect: 'relay' },
  { name: 'Transfer-Encoding: gzip, chunked', bytes: `${OK}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: 'either' },
  { name: 'a 20 KiB header field', bytes: `${OK}X-Big: ${'a'.repeat(20_480)}\r\nContent-Length: 5\r\n\r\nhello`, expect: 'either' },
  { name: 'a 100 KiB header field', bytes: `${OK}X-Big: ${'a'.repeat(102_400)}\r\nContent-Length: 5\r\n\r\nhello`, expect: '502' },
];
