// Submits a job to prs-master and follows it to its end from Node.js, with nothing of prs but
// its .proto files (loaded as they are by @grpc/proto-loader): the JobService is a public API.
//
//   node submit_and_watch.js CONFIG.json
//
// CONFIG: {"proto_dir": "<repo>/proto", "master": "host:port", "ca": "ca.pem" or null,
//          "token": "..." or null, "spec": {JobSpec, absolute paths}, "bad_spec": {JobSpec}}
// Prints one JSON object: the refused bad spec, an unknown job's error, the job id, every
// state WatchJob streamed, the final status and the job as ListJobs shows it.

'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const definition = protoLoader.loadSync('prs/v1/job_service.proto', {
  includeDirs: [config.proto_dir],
  keepCase: true, // the .proto's field names: job_id, source_directory, ...
  longs: Number,
  enums: String, // JobState as its name: "SUCCEEDED"
  defaults: true,
});
const v1 = grpc.loadPackageDefinition(definition).prs.v1;
const credentials = config.ca
  ? grpc.credentials.createSsl(fs.readFileSync(config.ca))
  : grpc.credentials.createInsecure();
const client = new v1.JobService(config.master, credentials);
const metadata = new grpc.Metadata();
if (config.token) metadata.add('authorization', 'Bearer ' + config.token);

const deadline = (seconds) => ({ deadline: Date.now() + seconds * 1000 });

// Every regular file under `dir`, as SourceSnapshot wants them: path relative to it, mode, bytes.
function snapshot(dir) {
  const files = [];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) {
        walk(child);
      } else if (entry.isFile()) {
        const full = path.join(dir, child);
        files.push({
          path: Buffer.from(child),
          mode: fs.statSync(full).mode & 0o777,
          content: fs.readFileSync(full),
        });
      }
    }
  };
  walk('');
  return { files };
}

// One unary call as a promise; a failure resolves to {code, details}.
function call(method, request, seconds) {
  return new Promise((resolve) => {
    client[method](request, metadata, deadline(seconds), (error, response) => {
      resolve(error ? { code: grpc.status[error.code], details: error.details } : response);
    });
  });
}

// WatchJob's statuses until the stream ends (after the terminal one).
function watch(jobId) {
  return new Promise((resolve, reject) => {
    const states = [];
    let last = null;
    const stream = client.WatchJob({ job_id: jobId }, metadata, deadline(120));
    stream.on('data', (status) => {
      states.push(status.state);
      last = status;
    });
    stream.on('end', () => resolve({ states, last }));
    stream.on('error', reject);
  });
}

async function main() {
  const result = {};
  const snap = snapshot(config.spec.source_directory);
  result.refused = await call('SubmitJob', { spec: config.bad_spec, snapshot: snap }, 30);
  result.unknown = await call('GetJob', { job_id: 'no-such-job' }, 10);
  const submitted = await call('SubmitJob', { spec: config.spec, snapshot: snap }, 60);
  if (!submitted.job_id) throw new Error('SubmitJob failed: ' + JSON.stringify(submitted));
  result.job_id = submitted.job_id;
  result.log_dir = submitted.log_dir;
  const { states, last } = await watch(submitted.job_id);
  result.states = states;
  result.final = last;
  const listed = await call('ListJobs', { limit: 10 }, 10);
  result.listed = listed.jobs.map((j) => [j.job_id, j.state, j.owner]);
  const logs = await call('ListLogs', { job_id: submitted.job_id }, 10);
  result.log_files = logs.files.map((f) => f.path);
  client.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((error) => {
  process.stderr.write('node client failed: ' + (error.stack || error) + '\n');
  process.exit(1);
});
