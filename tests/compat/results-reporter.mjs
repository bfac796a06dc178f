// A node:test reporter that writes one JSON line per top-level test, {"name", "result"}, with
// result OK, FAIL or SKIP as in meson's testlog.json, so that scripts/test can count these tests
// in the same summary line as the meson tests.
export default async function* reportResults(source) {
    for await (const event of source) {
        if ((event.type !== 'test:pass' && event.type !== 'test:fail') || event.data.nesting !== 0) {
            continue;
        }
        let result = event.type === 'test:pass' ? 'OK' : 'FAIL';
        if (event.data.skip !== undefined || event.data.todo !== undefined) {
            result = 'SKIP';
        }
        yield `${JSON.stringify({ name: event.data.name, result })}\n`;
    }
}
