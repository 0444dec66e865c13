// The one place that knows where the server lives.
//
// In development this can point at the example server (`npm start` in the repository root,
// port 3000). The mini program may only call https domains listed in its admin console, so for a
// local http address tick "Do not verify valid domain names..." (不校验合法域名) in the
// devtools' project details. Real devices never skip that check: production needs https and
// the domain registered as a request domain.
const API_BASE = 'http://localhost:3000'

module.exports = { API_BASE }
