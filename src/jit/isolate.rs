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
//! [`Isolation::worker`] or next to the current executable. The protocol is one request, one response, each a
//! little-endian `u32` length followed by that many bytes of bincode ([`Request`], [`Response`]). The pool
//! keeps its workers running between scripts (warm) and replaces one that died or was killed.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
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

/// What the engine asks a worker to do: optimize `bitcode` at `opt` and compile it for the target.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The script's name (errors name it).
    pub name: String,
    /// The module after import, as bitcode.
    pub bitcode: Vec<u8>,
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
    /// Decoding the request.
    pub decode: u64,
    /// Creating the LLVM context and target machine (0 when reused).
    pub setup: u64,
    /// Parsing the bitcode.
    pub parse: u64,
    /// The optimization pipeline.
    pub optimize: u64,
    /// Code generation.
    pub codegen: u64,
    /// Everything else before the response is encoded (printing IR, listing symbols, dropping the module).
    pub other: u64,
}

/// A worker's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// The object file, the symbols the optimized module defines, its text (if asked) and the time
    /// optimization took.
    Object {
        object: Vec<u8>,
        defined: Vec<String>,
        optimized_ir: Option<String>,
        optimize_nanos: u64,
        /// Where the worker's time went.
        times: WorkerTimes,
    },
    /// Code generation reported an error diagnostic.
    Codegen {
        function: Option<String>,
        message: String,
    },
    /// Any other error (parse, verify, passes, target), as text.
    Failed { message: String },
}

fn read_frame(input: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    input.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

fn write_frame(output: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    output.write_all(&len.to_le_bytes())?;
    output.write_all(bytes)?;
    output.flush()
}

/// The worker's side: answers requests from `input` on `output` until `input` ends. Each request is compiled
/// in a fresh LLVM context; target machines are reused between requests for the same target.
pub fn serve(mut input: impl Read, mut output: impl Write) -> std::io::Result<()> {
    let mut machine: Option<TargetMachine> = None;
    while let Some(frame) = read_frame(&mut input)? {
        let start = Instant::now();
        let response = match bincode::deserialize::<Request>(&frame) {
            Ok(request) => compile(&request, &mut machine, start),
            Err(e) => Response::Failed {
                message: format!("malformed request: {e}"),
            },
        };
        let bytes = bincode::serialize(&response)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        write_frame(&mut output, &bytes)?;
    }
    Ok(())
}

fn compile(request: &Request, machine: &mut Option<TargetMachine>, start: Instant) -> Response {
    let mut times = WorkerTimes::default();
    let mut lap = {
        let mut last = start;
        move || {
            let now = Instant::now();
            let d = now.duration_since(last).as_nanos() as u64;
            last = now;
            d
        }
    };
    times.decode = lap();
    let failed = |e: Error| match e {
        Error::Codegen {
            function, message, ..
        } => Response::Codegen { function, message },
        other => Response::Failed {
            message: other.to_string(),
        },
    };
    let reuse = machine.as_ref().is_some_and(|tm| {
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
            Ok(tm) => *machine = Some(tm),
            Err(e) => return failed(e),
        }
    }
    let Some(tm) = machine.as_ref() else {
        return Response::Failed {
            message: "no target machine".into(),
        };
    };
    let ctx = Context::new();
    times.setup = lap();
    let result = (|| {
        let mut module = Module::parse_bitcode(&ctx, &request.bitcode, &request.name)?;
        times.parse = lap();
        optimize::optimize(&mut module, tm, request.opt)?;
        times.optimize = lap();
        let optimized_ir = request.keep_ir.then(|| module.print());
        let defined: Vec<String> = module.defined_symbols().into_iter().collect();
        times.other = lap();
        let object = tm.emit_object(&module)?;
        times.codegen = lap();
        Ok((object, defined, optimized_ir))
    })();
    drop(ctx);
    times.other += lap();
    match result {
        Ok((object, defined, optimized_ir)) => Response::Object {
            object,
            defined,
            optimized_ir,
            optimize_nanos: times.optimize,
            times,
        },
        Err(e) => failed(e),
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
    /// Host: encoding the request and writing it into the worker's pipe.
    pub send: Duration,
    /// Worker: decoding the request.
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
    /// The round trip minus the worker's measured work: the worker reading the request and encoding and
    /// writing its response, the host reading it, and the processes waking up.
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
    stdin: ChildStdin,
    responses: Receiver<std::io::Result<Option<Vec<u8>>>>,
    /// The last bytes the worker wrote to stderr (LLVM's fatal-error reason goes there).
    stderr: Arc<Mutex<Vec<u8>>>,
}

const STDERR_KEEP: usize = 16 << 10;

impl Worker {
    fn spawn(path: &Path) -> Result<Worker> {
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(path, e))?;
        let (Some(stdin), Some(mut stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Config {
                message: format!("{}: no pipes to the worker", path.display()),
            });
        };
        let (tx, responses) = mpsc::channel();
        std::thread::Builder::new()
            .name("thinjit-worker-out".into())
            .spawn(move || loop {
                let frame = read_frame(&mut stdout);
                let done = !matches!(frame, Ok(Some(_)));
                if tx.send(frame).is_err() || done {
                    break;
                }
            })
            .map_err(|e| Error::io(path, e))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        std::thread::Builder::new()
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
            stdin,
            responses,
            stderr,
        })
    }

    /// Kills the worker and says how it ended and what it last wrote to stderr.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let status = self.child.wait();
        // The stderr thread drains what is left once the process is gone.
        std::thread::sleep(Duration::from_millis(20));
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
            bitcode,
            triple: target.triple.clone(),
            cpu: target.cpu.clone(),
            features: target.features.clone(),
            opt,
            keep_ir,
        };
        let bytes = bincode::serialize(&request).map_err(|e| Error::Config {
            message: format!("encoding a request for `{script}`: {e}"),
        })?;
        let mut worker = self.take()?;
        if write_frame(&mut worker.stdin, &bytes).is_err() {
            // A worker that died while idle: one retry with a fresh one.
            let _ = worker.kill();
            worker = Worker::spawn(&self.path)?;
            write_frame(&mut worker.stdin, &bytes).map_err(|e| Error::io(&self.path, e))?;
        }
        times.send = start.elapsed();
        let start = Instant::now();
        let frame = match worker.responses.recv_timeout(self.timeout) {
            Ok(Ok(Some(frame))) => frame,
            Err(RecvTimeoutError::Timeout) => {
                let _ = worker.kill();
                self.replace();
                return Err(Error::Timeout {
                    script: script.to_owned(),
                    limit: self.timeout,
                });
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
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
        let response: Response =
            bincode::deserialize(&frame).map_err(|e| Error::CompileAborted {
                script: script.to_owned(),
                message: format!("malformed response from the worker: {e}"),
            })?;
        match response {
            Response::Object {
                object,
                defined,
                optimized_ir,
                optimize_nanos,
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
                    optimize: Duration::from_nanos(optimize_nanos),
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
                    mut child, stdin, ..
                } = w;
                // End of input: the worker returns from `serve`; then make sure it is gone.
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
