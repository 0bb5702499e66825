//! Isolated compilation: optimization and code generation in helper processes.
//!
//! In: a script module after import (bitcode), the JIT's target and optimization level. Out: the relocatable
//! object a helper process made of it (the engine links it with its own ORC, so every engine invariant holds
//! as in-process), or a typed error — [`Error::CompileAborted`] when LLVM aborted or crashed the helper,
//! [`Error::Timeout`] when it took longer than the limit (the helper is killed), [`Error::Codegen`] for an
//! error diagnostic. Whatever LLVM does, the host process continues.
//!
//! A library cannot re-execute its host, so the helper is a small executable: `thinjit-worker` (shipped by
//! the `thinjit-cli` crate; its `main` is [`serve`] on stdin/stdout), found at the path given to
//! [`Isolation::worker`] or next to the current executable. Its stdin and stdout are one end of a Unix socket
//! pair; the engine reads the answer on the calling thread with the time limit as the socket's read timeout
//! (no reader thread, no channel: one wake-up each way). The protocol is one request, one response, each one
//! frame: a little-endian `u32` length, then a little-endian `u32` header length, a bincode header
//! ([`Request`], [`Response`]) and the raw payload (the module's bitcode, the object) — written with one
//! `write` and read with as few. The pool keeps its workers running between scripts (warm) and replaces one
//! that died or was killed. A worker keeps its target machine and its LLVM context between requests, the
//! context for at most [`SCRIPTS_PER_CONTEXT`](super::SCRIPTS_PER_CONTEXT) scripts as the engine's own
//! pooled contexts, and skips the verifier the host already ran: the per-request work is what the engine does
//! in-process, plus writing and parsing the bitcode.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use crate::optimize::{self, OptLevel};
use crate::summary::ObjectTarget;
use crate::{Error, Result};

/// The name of the worker executable looked for next to the current executable.
pub const WORKER_NAME: &str = "thinjit-worker";

/// Largest frame either side accepts (a script's bitcode or object).
const MAX_FRAME: u32 = 1 << 30;

/// How isolated compilation runs (see [`EngineBuilder::isolate_codegen`](super::EngineBuilder::isolate_codegen)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolation {
    pub(crate) worker: Option<PathBuf>,
    pub(crate) workers: usize,
    pub(crate) timeout: Duration,
}

impl Default for Isolation {
    fn default() -> Self {
        Isolation {
            worker: None,
            workers: 1,
            timeout: Duration::from_secs(30),
        }
    }
}

impl Isolation {
    /// One warm worker, found next to the current executable, 30 s per script.
    pub fn new() -> Self {
        Self::default()
    }

    /// The worker executable (default: `thinjit-worker` next to the current executable, or one directory up,
    /// as for test binaries in `target/<profile>/deps`).
    pub fn worker(mut self, path: impl Into<PathBuf>) -> Self {
        self.worker = Some(path.into());
        self
    }

    /// How many workers run (scripts compiled at the same time; at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// How long optimizing and compiling one script may take before its worker is killed.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    fn worker_path(&self) -> Result<PathBuf> {
        if let Some(path) = &self.worker {
            return Ok(path.clone());
        }
        let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
        let dir = exe.parent().unwrap_or(Path::new("."));
        let candidates = [
            dir.join(WORKER_NAME),
            dir.parent().unwrap_or(dir).join(WORKER_NAME),
        ];
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| Error::Config {
                message: format!(
                    "isolated compilation needs the `{WORKER_NAME}` executable: not found next to {} (give \
                     its path with Isolation::worker)",
                    exe.display()
                ),
            })
    }
}

/// What the engine asks a worker to do: optimize the bitcode (the frame's payload) at `opt` and compile it for
/// the target.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The script's name (errors name it).
    pub name: String,
    /// The JIT's target.
    pub triple: String,
    /// The JIT's CPU.
    pub cpu: String,
    /// The JIT's features.
    pub features: String,
    /// The optimization level.
    pub opt: OptLevel,
    /// Send the optimized module back as text.
    pub keep_ir: bool,
}

/// Where a worker's time went for one request, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct WorkerTimes {
    /// Reading the request's bytes once its first ones had arrived, and decoding its header.
    pub decode: u64,
    /// Creating the LLVM context and target machine (near 0 when reused).
    pub setup: u64,
    /// Parsing the bitcode.
    pub parse: u64,
    /// The optimization pipeline.
    pub optimize: u64,
    /// Code generation.
    pub codegen: u64,
    /// The rest before the response is encoded (printing IR, listing symbols, freeing the module).
    pub other: u64,
}

/// A worker's answer (the header of the response frame; an object travels as the frame's payload).
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// The object file is the payload; the symbols the optimized module defines, its text (if asked) and
    /// where the time went.
    Object {
        defined: Vec<String>,
        optimized_ir: Option<String>,
        times: WorkerTimes,
    },
    /// Code generation reported an error diagnostic.
    Codegen {
        function: Option<String>,
        message: String,
    },
    /// Any other error (parse, passes, target), as text.
    Failed { message: String },
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// One frame: total length, header length, header, payload.
fn encode_frame(header: &impl Serialize, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let header = bincode::serialize(header).map_err(|e| invalid(e.to_string()))?;
    let total = 4 + header.len() + payload.len();
    let len = u32::try_from(total)
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| invalid(format!("frame of {total} bytes")))?;
    let mut frame = Vec::with_capacity(4 + total);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&(header.len() as u32).to_le_bytes());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// Splits a frame's body (after the total length) into its decoded header and its payload (the body itself,
/// header bytes removed: no copy of the payload).
fn decode_frame<T: serde::de::DeserializeOwned>(
    mut body: Vec<u8>,
) -> std::io::Result<(T, Vec<u8>)> {
    let header_len = body
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .filter(|h| 4 + h <= body.len())
        .ok_or_else(|| invalid("truncated frame header".into()))?;
    let header =
        bincode::deserialize(&body[4..4 + header_len]).map_err(|e| invalid(e.to_string()))?;
    body.drain(..4 + header_len);
    Ok((header, body))
}

/// The worker's side: answers requests from `input` on `output` until `input` ends. A worker keeps its target
/// machine (for as long as requests name the same target) and its LLVM context (for at most
/// [`SCRIPTS_PER_CONTEXT`](super::SCRIPTS_PER_CONTEXT) requests) between requests.
pub fn serve(mut input: impl Read, mut output: impl Write) -> std::io::Result<()> {
    let mut state = WorkerState::default();
    loop {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let start = Instant::now();
        let len = u32::from_le_bytes(len);
        if len > MAX_FRAME {
            return Err(invalid(format!("frame of {len} bytes")));
        }
        let mut body = vec![0u8; len as usize];
        input.read_exact(&mut body)?;
        let (response, object) = match decode_frame::<Request>(body) {
            Ok((request, bitcode)) => state.compile(&request, &bitcode, start),
            Err(e) => (
                Response::Failed {
                    message: format!("malformed request: {e}"),
                },
                Vec::new(),
            ),
        };
        output.write_all(&encode_frame(&response, &object)?)?;
        output.flush()?;
    }
}

/// What a worker keeps between requests.
#[derive(Default)]
struct WorkerState {
    machine: Option<TargetMachine>,
    context: Option<(Context, u32)>,
}

impl WorkerState {
    /// Optimizes and compiles one request: the response and the object (empty on failure).
    fn compile(
        &mut self,
        request: &Request,
        bitcode: &[u8],
        start: Instant,
    ) -> (Response, Vec<u8>) {
        let mut times = WorkerTimes::default();
        let mut last = start;
        let mut lap = || {
            let now = Instant::now();
            let d = now.duration_since(last).as_nanos() as u64;
            last = now;
            d
        };
        times.decode = lap();
        let failed = |e: Error| {
            let response = match e {
                Error::Codegen {
                    function, message, ..
                } => Response::Codegen { function, message },
                other => Response::Failed {
                    message: other.to_string(),
                },
            };
            (response, Vec::new())
        };
        let reuse = self.machine.as_ref().is_some_and(|tm| {
            tm.triple() == request.triple
                && tm.cpu() == request.cpu
                && tm.features() == request.features
        });
        if !reuse {
            match TargetMachine::new(
                &request.triple,
                &request.cpu,
                &request.features,
                CodeGenOpt::Aggressive,
            ) {
                Ok(tm) => self.machine = Some(tm),
                Err(e) => return failed(e),
            }
        }
        let Some(tm) = self.machine.as_ref() else {
            return failed(Error::Config {
                message: "no target machine".into(),
            });
        };
        // A context inlining leaves types and constants in is dropped after a bounded number of scripts.
        let worn = match &self.context {
            Some((_, uses)) => *uses >= super::SCRIPTS_PER_CONTEXT,
            None => true,
        };
        if worn {
            self.context = None;
            self.context = Some((Context::new(), 0));
        }
        let Some((ctx, uses)) = self.context.as_mut() else {
            return failed(Error::Config {
                message: "no context".into(),
            });
        };
        *uses += 1;
        times.setup = lap();
        let result = (|| {
            let mut module = Module::parse_bitcode(ctx, bitcode, &request.name)?;
            times.parse = lap();
            // The host verified the module before import (the engine's one verification per trust boundary),
            // and bitcode carries it over unchanged: no second verification here, as in-process.
            optimize::optimize_verified(&mut module, tm, request.opt)?;
            times.optimize = lap();
            let optimized_ir = request.keep_ir.then(|| module.print());
            let defined: Vec<String> = module.defined_symbols().into_iter().collect();
            times.other = lap();
            let object = tm.emit_object_verified(&module)?;
            times.codegen = lap();
            drop(module);
            times.other += lap();
            Ok((object, defined, optimized_ir))
        })();
        match result {
            Ok((object, defined, optimized_ir)) => (
                Response::Object {
                    defined,
                    optimized_ir,
                    times,
                },
                object,
            ),
            Err(e) => failed(e),
        }
    }
}

/// What a worker made of a script.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) object: Vec<u8>,
    pub(crate) optimized_ir: Option<String>,
    pub(crate) optimize: Duration,
    pub(crate) times: IsolatedTimes,
}

/// Where the time of one isolated compile went ([`ScriptReport::isolated`](super::ScriptReport::isolated)):
/// the host's steps, the worker's own measures, and what is left of the round trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IsolatedTimes {
    /// Host: writing the module (after import) as bitcode.
    pub write_bitcode: Duration,
    /// Host: encoding the request and writing it to the worker.
    pub send: Duration,
    /// Worker: reading and decoding the request once it started arriving.
    pub worker_decode: Duration,
    /// Worker: the LLVM context and target machine for the request (near zero when reused).
    pub worker_setup: Duration,
    /// Worker: parsing the bitcode.
    pub worker_parse: Duration,
    /// Worker: the optimization pipeline.
    pub worker_optimize: Duration,
    /// Worker: code generation.
    pub worker_codegen: Duration,
    /// Worker: the rest of its measured work (optimized IR text, symbol list, freeing the module).
    pub worker_other: Duration,
    /// The round trip minus the worker's measured work: the worker waking up, encoding and writing its
    /// response, the host waking up and reading it.
    pub transfer: Duration,
    /// Host: decoding the response.
    pub receive: Duration,
    /// Bytes of bitcode sent.
    pub bitcode_bytes: usize,
    /// Bytes of object received.
    pub object_bytes: usize,
}

/// One running worker process.
struct Worker {
    child: Child,
    /// The host's end of the socket pair that is the worker's stdin and stdout.
    socket: UnixStream,
    /// The last bytes the worker wrote to stderr (LLVM's fatal-error reason goes there).
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The thread draining stderr (ends when the worker is gone).
    drain: Option<std::thread::JoinHandle<()>>,
}

const STDERR_KEEP: usize = 16 << 10;

/// How reading a response ended when it did not bring one.
enum ReadFailure {
    /// The time limit passed.
    Timeout,
    /// The worker closed its end (it died) or the socket failed.
    Closed,
}

impl Worker {
    fn spawn(path: &Path) -> Result<Worker> {
        let (host, worker) = UnixStream::pair().map_err(|e| Error::io(path, e))?;
        let worker_out = worker.try_clone().map_err(|e| Error::io(path, e))?;
        let mut child = Command::new(path)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(worker)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(worker_out)))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(path, e))?;
        let Some(mut err) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Config {
                message: format!("{}: no stderr pipe from the worker", path.display()),
            });
        };
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let drain = std::thread::Builder::new()
            .name("thinjit-worker-err".into())
            .spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.extend_from_slice(&chunk[..n]);
                        let excess = s.len().saturating_sub(STDERR_KEEP);
                        s.drain(..excess);
                    }
                }
            })
            .map_err(|e| Error::io(path, e))?;
        Ok(Worker {
            child,
            socket: host,
            stderr,
            drain: Some(drain),
        })
    }

    /// Reads `buf.len()` bytes before `deadline`.
    fn read_until(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), ReadFailure> {
        let mut filled = 0;
        while filled < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadFailure::Timeout);
            }
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|_| ReadFailure::Closed)?;
            match self.socket.read(&mut buf[filled..]) {
                Ok(0) => return Err(ReadFailure::Closed),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ReadFailure::Timeout)
                }
                Err(_) => return Err(ReadFailure::Closed),
            }
        }
        Ok(())
    }

    /// The body of the worker's next frame, read on this thread before `deadline`.
    fn read_response(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadFailure> {
        let mut len = [0u8; 4];
        self.read_until(&mut len, deadline)?;
        let len = u32::from_le_bytes(len);
        if len > MAX_FRAME {
            return Err(ReadFailure::Closed);
        }
        let mut body = vec![0u8; len as usize];
        self.read_until(&mut body, deadline)?;
        Ok(body)
    }

    /// Kills the worker and says how it ended and what it last wrote to stderr.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let status = self.child.wait();
        // Once the process is gone its stderr ends: the drain thread has read everything when it returns.
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        let text = self
            .stderr
            .lock()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default();
        let reason = text
            .lines()
            .find_map(|l| {
                l.split_once("LLVM fatal error: ")
                    .map(|(_, r)| r.trim().to_owned())
            })
            .or_else(|| {
                text.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.trim().to_owned())
            });
        let status = match status {
            Ok(s) => describe(s),
            Err(e) => format!("status unknown ({e})"),
        };
        match reason {
            Some(r) => format!("{r} (the worker {status})"),
            None => format!("the worker {status}"),
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name = match sig {
                4 => "SIGILL",
                6 => "SIGABRT",
                7 => "SIGBUS",
                8 => "SIGFPE",
                9 => "SIGKILL",
                11 => "SIGSEGV",
                _ => "a signal",
            };
            format!("was killed by {name} ({sig})")
        }
        (None, None) => "ended".into(),
    }
}

/// Warm helper processes that compile scripts.
pub(crate) struct Pool {
    path: PathBuf,
    timeout: Duration,
    idle: Mutex<Vec<Worker>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts `isolation.workers` workers.
    pub(crate) fn start(isolation: &Isolation) -> Result<Pool> {
        let path = isolation.worker_path()?;
        let workers = (0..isolation.workers.max(1))
            .map(|_| Worker::spawn(&path))
            .collect::<Result<Vec<_>>>()?;
        Ok(Pool {
            path,
            timeout: isolation.timeout,
            idle: Mutex::new(workers),
        })
    }

    fn take(&self) -> Result<Worker> {
        match self.idle.lock().ok().and_then(|mut w| w.pop()) {
            Some(w) => Ok(w),
            None => Worker::spawn(&self.path),
        }
    }

    fn give_back(&self, worker: Worker) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(worker);
        }
    }

    /// Replaces a worker that died or was killed, so the pool stays warm.
    fn replace(&self) {
        if let Ok(w) = Worker::spawn(&self.path) {
            self.give_back(w);
        }
    }

    /// Optimizes and compiles `module` (after import) in a worker. `expected` is what the script defines:
    /// optimization must not change it.
    pub(crate) fn compile(
        &self,
        module: &Module<'_>,
        script: &str,
        target: &ObjectTarget,
        opt: OptLevel,
        keep_ir: bool,
        expected: &BTreeSet<String>,
    ) -> Result<Compiled> {
        let mut times = IsolatedTimes::default();
        let start = Instant::now();
        let bitcode = module.write_bitcode();
        times.write_bitcode = start.elapsed();
        times.bitcode_bytes = bitcode.len();
        let start = Instant::now();
        let request = Request {
            name: script.to_owned(),
            triple: target.triple.clone(),
            cpu: target.cpu.clone(),
            features: target.features.clone(),
            opt,
            keep_ir,
        };
        let frame = encode_frame(&request, &bitcode).map_err(|e| Error::Config {
            message: format!("encoding a request for `{script}`: {e}"),
        })?;
        drop(bitcode);
        let mut worker = self.take()?;
        times.send = start.elapsed();
        let start = Instant::now();
        if worker.socket.write_all(&frame).is_err() {
            // A worker that died while idle: one retry with a fresh one.
            let _ = worker.kill();
            worker = Worker::spawn(&self.path)?;
            worker
                .socket
                .write_all(&frame)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        drop(frame);
        let body = match worker.read_response(start + self.timeout) {
            Ok(body) => body,
            Err(ReadFailure::Timeout) => {
                let _ = worker.kill();
                self.replace();
                return Err(Error::Timeout {
                    script: script.to_owned(),
                    limit: self.timeout,
                });
            }
            Err(ReadFailure::Closed) => {
                let message = worker.kill();
                self.replace();
                return Err(Error::CompileAborted {
                    script: script.to_owned(),
                    message,
                });
            }
        };
        let round_trip = start.elapsed();
        self.give_back(worker);
        let start = Instant::now();
        let (response, object): (Response, Vec<u8>) =
            decode_frame(body).map_err(|e| Error::CompileAborted {
                script: script.to_owned(),
                message: format!("malformed response from the worker: {e}"),
            })?;
        match response {
            Response::Object {
                defined,
                optimized_ir,
                times: worker,
            } => {
                times.receive = start.elapsed();
                let ns = Duration::from_nanos;
                times.worker_decode = ns(worker.decode);
                times.worker_setup = ns(worker.setup);
                times.worker_parse = ns(worker.parse);
                times.worker_optimize = ns(worker.optimize);
                times.worker_codegen = ns(worker.codegen);
                times.worker_other = ns(worker.other);
                let measured = worker.decode
                    + worker.setup
                    + worker.parse
                    + worker.optimize
                    + worker.codegen
                    + worker.other;
                times.transfer = round_trip.saturating_sub(ns(measured));
                times.object_bytes = object.len();
                let defined: BTreeSet<String> = defined.into_iter().collect();
                if &defined != expected {
                    return Err(Error::Import {
                        module: script.to_owned(),
                        message: format!(
                            "import and optimization changed the script's definitions ({expected:?} -> {defined:?})"
                        ),
                    });
                }
                Ok(Compiled {
                    object,
                    optimized_ir,
                    optimize: times.worker_optimize,
                    times,
                })
            }
            Response::Codegen { function, message } => Err(Error::Codegen {
                script: script.to_owned(),
                function,
                message,
            }),
            Response::Failed { message } => Err(Error::Codegen {
                script: script.to_owned(),
                function: None,
                message,
            }),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(mut idle) = self.idle.lock() {
            for w in idle.drain(..) {
                let Worker {
                    mut child,
                    socket,
                    drain,
                    ..
                } = w;
                // End of input: the worker returns from `serve`; then make sure it is gone.
                let _ = socket.shutdown(std::net::Shutdown::Both);
                drop(socket);
                let _ = child.kill();
                let _ = child.wait();
                if let Some(drain) = drain {
                    let _ = drain.join();
                }
            }
        }
    }
}
