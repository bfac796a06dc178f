// Runs the stock socket.io-client 4 against helvino-realtime, both on the real-time service's own
// port and through the gateway's port, with the client's default transports (HTTP long-polling,
// then an upgrade to WebSocket) and with WebSocket only. tests/compat/run starts the services and
// sets the HELVINO_COMPAT_* variables read below.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { io } from 'socket.io-client';

import { describeConnectError } from './connect-error.mjs';

// Bound on every wait for a connection, an event or an HTTP reply.
const EVENT_TIMEOUT_MS = 5000;
// How long a client must stay silent after an event of another org to show that it was not sent
// that event. The event reaches its own org first, so this only has to cover the delay between two
// sockets of the same service.
const SILENCE_WINDOW_MS = 500;
const TEST_TIMEOUT_MS = 30000;

function requireEnv(name) {
    const value = process.env[name];
    if (!value) {
        throw new Error(`${name} is not set; run this file with tests/compat/run`);
    }
    return value;
}

const gatewayUrl = requireEnv('HELVINO_COMPAT_GATEWAY_URL');
const realtimeUrl = requireEnv('HELVINO_COMPAT_REALTIME_URL');
const orgA = { id: requireEnv('HELVINO_COMPAT_ORG_A'), key: requireEnv('HELVINO_COMPAT_KEY_A') };
const orgB = { id: requireEnv('HELVINO_COMPAT_ORG_B'), key: requireEnv('HELVINO_COMPAT_KEY_B') };

const targets = [
    { name: 'gateway port', url: gatewayUrl },
    { name: 'realtime port', url: realtimeUrl },
];
const transportModes = [
    { name: 'default transports', options: {}, upgrades: true },
    { name: 'websocket only', options: { transports: ['websocket'] }, upgrades: false },
];

/* --- HTTP API ------------------------------------------------------------------------------- */

// Sends one request to the gateway's HTTP API and returns the status and the parsed JSON body.
async function callApi(method, path, key, body) {
    const headers = { 'x-org-key': key };
    if (body !== undefined) {
        headers['content-type'] = 'application/json';
    }
    const response = await fetch(gatewayUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(EVENT_TIMEOUT_MS),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

async function createConversation(org) {
    const reply = await callApi('POST', '/conversations', org.key);
    assert.equal(reply.status, 201, `POST /conversations for ${org.id} returned ${JSON.stringify(reply.body)}`);
    return reply.body;
}

async function readConversation(org, conversationId) {
    const reply = await callApi('GET', `/conversations/${conversationId}`, org.key);
    assert.equal(reply.status, 200, `GET /conversations/${conversationId} returned ${JSON.stringify(reply.body)}`);
    return reply.body;
}

async function postMessage(org, conversationId, content) {
    const reply = await callApi('POST', `/conversations/${conversationId}/messages`, org.key, { role: 'user', content });
    assert.equal(reply.status, 201, `POST /conversations/${conversationId}/messages returned ${JSON.stringify(reply.body)}`);
    return reply.body;
}

/* --- Socket.IO clients ---------------------------------------------------------------------- */

// Rejects with a message naming what was awaited when the promise does not settle in time.
function withTimeout(promise, description, timeoutMs = EVENT_TIMEOUT_MS) {
    let timer;
    const timeout = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${description}`)), timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

// A socket.io-client socket with every event it received, in order. Settles `connected` on the
// first connect or connect_error, and `upgraded` when the Engine.IO transport changes.
class Client {
    constructor(name, url, auth, options) {
        this.name = name;
        this.url = url;
        this.events = [];
        this.waiters = [];

        // forceNew gives each client its own connection (io() would share one per URL), and
        // without reconnection a test gets the server's first reply, not a retry.
        this.socket = io(url, { forceNew: true, reconnection: false, timeout: EVENT_TIMEOUT_MS, auth, ...options });
        this.socket.onAny((event, ...args) => {
            this.events.push({ event, args });
            this.notifyWaiters();
        });
        // autoConnect opens the Engine.IO socket inside io(), so it exists here.
        const engine = this.socket.io.engine;
        this.upgraded = new Promise((resolve) => engine.once('upgrade', resolve));
        this.connected = new Promise((resolve, reject) => {
            this.socket.once('connect', resolve);
            this.socket.once('connect_error', reject);
            // The client reports neither event when the connection closes before the CONNECT
            // reply, so a test would only see its timeout without this. After a connect_error the
            // client closes the connection itself, before it emits connect_error, so the
            // rejection waits one turn to let connect_error settle the promise first.
            engine.once('close', (reason) => {
                setImmediate(() => reject(new Error(`connection closed before the CONNECT reply: ${reason}`)));
            });
        });
        // Avoids an unhandled rejection when a test expects connect_error and never awaits this.
        this.connected.catch(() => {});
    }

    // Resolves with the first received event that `match` accepts, including earlier ones.
    waitForEvent(description, match) {
        const found = this.events.find(match);
        if (found) {
            return Promise.resolve(found);
        }
        const waiter = { match };
        const promise = new Promise((resolve) => {
            waiter.resolve = resolve;
        });
        this.waiters.push(waiter);
        return withTimeout(promise, `${this.name} to receive ${description}`)
            .catch((error) => {
                // The events that did arrive show a payload that differs from the expected one.
                throw new Error(`${error.message}; events received: ${JSON.stringify(this.events)}`);
            })
            .finally(() => {
                this.waiters = this.waiters.filter((other) => other !== waiter);
            });
    }

    notifyWaiters() {
        const latest = this.events[this.events.length - 1];
        for (const waiter of this.waiters) {
            if (waiter.match(latest)) {
                waiter.resolve(latest);
            }
        }
    }

    close() {
        this.socket.disconnect();
        this.socket.io.engine?.close();
    }
}

// Runs body with a function that opens clients, and closes every client it opened afterwards.
async function withClients(body) {
    const clients = [];
    const open = (name, url, auth, options) => {
        const client = new Client(name, url, auth, options);
        clients.push(client);
        return client;
    };
    try {
        await body(open);
    } finally {
        for (const client of clients) {
            client.close();
        }
    }
}

async function expectConnected(client) {
    try {
        await withTimeout(client.connected, `${client.name} to connect`);
    } catch (error) {
        assert.fail(`${client.name} did not connect to ${client.url}: ${describeConnectError(error)}`);
    }
    assert.equal(client.socket.connected, true, `${client.name} is not connected after its connect event`);
}

function isMessageNew(messageId) {
    return (entry) => entry.event === 'message:new' && entry.args[0]?.message?.id === messageId;
}

function isConversationNew(conversationId) {
    return (entry) => entry.event === 'conversation:new' && entry.args[0]?.id === conversationId;
}

async function expectUpgraded(client) {
    await withTimeout(client.upgraded, `${client.name} to upgrade its transport`);
    assert.equal(client.socket.io.engine.transport.name, 'websocket');
}

async function expectConnectError(client, expectedMessage) {
    const error = await withTimeout(
        client.connected.then(
            () => assert.fail(`${client.name} connected, expected connect_error "${expectedMessage}"`),
            (err) => err,
        ),
        `${client.name} to get connect_error`,
    );
    assert.equal(error.message, expectedMessage, `expected connect_error "${expectedMessage}", got: ${describeConnectError(error)}`);
    assert.equal(client.socket.connected, false);
}

/* --- Tests ---------------------------------------------------------------------------------- */

for (const target of targets) {
    for (const mode of transportModes) {
        const prefix = `${target.name}, ${mode.name}`;

        test(`${prefix}: message:new reaches own org only`, { timeout: TEST_TIMEOUT_MS }, () =>
            withClients(async (open) => {
                const conversationA = await createConversation(orgA);
                const conversationB = await createConversation(orgB);

                const clientB = open('org B client', target.url, { orgKey: orgB.key }, mode.options);
                await expectConnected(clientB);

                // The message is posted as soon as connect fires, so with default transports it
                // races the upgrade to WebSocket.
                const clientA = open('org A client', target.url, { orgKey: orgA.key }, mode.options);
                const postedA = new Promise((resolve, reject) => {
                    clientA.socket.once('connect', () => postMessage(orgA, conversationA.id, 'hello from A').then(resolve, reject));
                });
                await expectConnected(clientA);
                if (!mode.upgrades) {
                    assert.equal(clientA.socket.io.engine.transport.name, 'websocket');
                }
                const messageA = await withTimeout(postedA, 'the message post of org A');

                const receivedA = await clientA.waitForEvent('message:new of its own post', isMessageNew(messageA.id));
                assert.deepEqual(receivedA.args, [{ conversationId: conversationA.id, message: messageA }]);
                await delay(SILENCE_WINDOW_MS);
                assert.deepEqual(clientB.events, [], 'org B received events although only org A posted');

                const messageB = await postMessage(orgB, conversationB.id, 'hello from B');
                const receivedB = await clientB.waitForEvent('message:new of its own post', isMessageNew(messageB.id));
                assert.deepEqual(receivedB.args, [{ conversationId: conversationB.id, message: messageB }]);
                await delay(SILENCE_WINDOW_MS);
                assert.deepEqual(clientA.events, [receivedA], 'org A received events besides its own message:new');

                if (mode.upgrades) {
                    await expectUpgraded(clientA);
                }
            }),
        );

        test(`${prefix}: conversation:new reaches own org only`, { timeout: TEST_TIMEOUT_MS }, () =>
            withClients(async (open) => {
                const clientA = open('org A client', target.url, { orgKey: orgA.key }, mode.options);
                const clientB = open('org B client', target.url, { orgKey: orgB.key }, mode.options);
                await expectConnected(clientA);
                await expectConnected(clientB);

                const created = await createConversation(orgA);
                const received = await clientA.waitForEvent('conversation:new of its own conversation', isConversationNew(created.id));

                // The event carries the conversation as the store created it: what GET returns
                // for a conversation without messages, less the empty list.
                const { messages, ...conversation } = await readConversation(orgA, created.id);
                assert.deepEqual(messages, []);
                assert.equal(conversation.orgId, orgA.id);
                assert.equal(conversation.messageCount, 0);
                assert.deepEqual(received.args, [conversation]);

                await delay(SILENCE_WINDOW_MS);
                assert.deepEqual(clientB.events, [], 'org B received events although only org A created a conversation');
            }),
        );

        test(`${prefix}: invalid key gets connect_error`, { timeout: TEST_TIMEOUT_MS }, () =>
            withClients(async (open) => {
                const client = open('client with an invalid key', target.url, { orgKey: 'no-such-key' }, mode.options);
                await expectConnectError(client, 'Invalid organization key');
            }),
        );

        test(`${prefix}: missing key gets connect_error`, { timeout: TEST_TIMEOUT_MS }, () =>
            withClients(async (open) => {
                const client = open('client without a key', target.url, undefined, mode.options);
                await expectConnectError(client, 'Missing organization key');
            }),
        );

        if (mode.upgrades) {
            test(`${prefix}: events arrive after upgrade`, { timeout: TEST_TIMEOUT_MS }, () =>
                withClients(async (open) => {
                    const conversation = await createConversation(orgA);
                    const client = open('org A client', target.url, { orgKey: orgA.key }, mode.options);
                    await expectConnected(client);
                    await expectUpgraded(client);

                    const message = await postMessage(orgA, conversation.id, 'after the upgrade');
                    const received = await client.waitForEvent('message:new after the upgrade', isMessageNew(message.id));
                    assert.deepEqual(received.args, [{ conversationId: conversation.id, message }]);
                    assert.equal(client.socket.io.engine.transport.name, 'websocket');
                }),
            );
        }
    }
}
