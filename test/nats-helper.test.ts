import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { startNatsServer } from './helpers/nats-server.js'

t.test('the suite gets its own JetStream-enabled nats-server', async (t) => {
  const srv = await startNatsServer()
  t.teardown(() => srv.stop())
  const nc = await connect({ servers: srv.url })
  t.teardown(() => nc.close())
  const info = nc.info
  t.ok(info?.jetstream, 'JetStream is on')
  t.equal(info?.port, srv.port)
})
