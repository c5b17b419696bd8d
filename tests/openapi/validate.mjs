// validate.mjs - the OpenAPI document each app serves at /openapi.json, checked by an
// independent OpenAPI 3.1 validator (@seriousme/openapi-schema-validator): the document
// matches the OpenAPI 3.1 schema, every $ref resolves, and each path and method appears
// once with the operations the app registered.
// usage: node tests/openapi/validate.mjs APP_BINARY...   (each started with PORT=0)
// Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
import { spawn } from "node:child_process";
import { Validator } from "@seriousme/openapi-schema-validator";

let passed = 0, failed = 0;
function check(name, ok, detail = "") {
    if (ok) passed++, console.log(`PASS ${name}`);
    else failed++, console.log(`FAIL ${name}: ${detail}`);
    return ok;
}

// Starts the app on a free port; resolves with {proc, port} once it says where it listens.
function start(binary) {
    const proc = spawn(binary, [], { env: { ...process.env, PORT: "0", HOST: "127.0.0.1" }, stdio: ["ignore", "ignore", "pipe"] });
    return new Promise((resolve, reject) => {
        let text = "";
        const timer = setTimeout(() => reject(new Error(`no listening line: ${text}`)), 10000);
        proc.stderr.on("data", (chunk) => {
            text += chunk;
            const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
            if (m) clearTimeout(timer), resolve({ proc, port: Number(m[1]) });
        });
        proc.on("exit", (code) => reject(new Error(`exited with ${code}: ${text}`)));
    });
}

async function validate(binary) {
    const name = binary.split("/").pop();
    const { proc, port } = await start(binary);
    try {
        const res = await fetch(`http://127.0.0.1:${port}/openapi.json`);
        const doc = await res.json();
        check(`${name}_openapi_json_served`, res.status === 200 && doc.openapi === "3.1.0", `status ${res.status}`);
        const validator = new Validator();
        const result = await validator.validate(doc);
        check(`${name}_openapi_valid_3_1`, result.valid && validator.version === "3.1", JSON.stringify(result.errors)?.slice(0, 600));
        let resolved = null;
        try { resolved = validator.resolveRefs(); } catch (e) { resolved = e; }
        check(`${name}_openapi_refs_resolve`, resolved && !(resolved instanceof Error), String(resolved));
        const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
        const ops = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).filter((k) => methods.includes(k)).map((m) => `${m} ${p}`));
        check(`${name}_openapi_operations_unique`, new Set(ops).size === ops.length && ops.length > 0, ops.join(", "));
        check(`${name}_openapi_lists_itself`, ops.includes("get /openapi.json"), ops.join(", "));
        const templated = Object.keys(doc.paths).every((p) => !/[:*]|\{[^}]*:/.test(p));
        check(`${name}_openapi_paths_in_name_form`, templated, Object.keys(doc.paths).join(" "));
    } finally {
        proc.kill("SIGTERM");
    }
}

for (const binary of process.argv.slice(2)) {
    try { await validate(binary); } catch (e) { check(`${binary}_openapi`, false, e.message); }
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
