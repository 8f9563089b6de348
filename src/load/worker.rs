//! One load worker: a thread with one mio `Poll`, a slab of clients and a
//! timer wheel for their transport deadlines and Pings.
//!
//! Loop shape (as a shard's): connect what the ramp allows, fire due
//! timers, wait in `poll` until the next deadline, hand each readiness
//! event to its client, then drain that client's events. A client's
//! timers are re-armed after every call into it. Nothing here blocks or
//! sleeps outside `poll`.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};
use slab::Slab;

use super::bot::{Bot, Meter, Role};
use super::report::{new_histogram, ThreadStats};
use super::{BotsConfig, Endpoint, LoadConfig, PingChannel, Timeline, WorkerSample};
use crate::client::wt::{self, WtClient, WtOptions};
use crate::client::{
    Channel, ClientError, ClientEvent, Clock, CloseReason, CloseSource, Credentials, Now,
    SendError, Traffic, Trust, WsClient,
};
use crate::proto::wire::ErrorCode;
use crate::reactor::sys;
use crate::reactor::timer::{TimerKey, TimerWheel};

/// The transport deadline of a client (handshake, QUIC timers, session).
const TIMER_TRANSPORT: u8 = 0;
/// The client's next Ping.
const TIMER_PING: u8 = 1;
/// The bot's next action (input, placement, ready, room list).
const TIMER_BOT: u8 = 2;
/// Between two samples a worker sends the run (progress line, plot).
const SAMPLE_INTERVAL_US: u64 = 1_000_000;
/// Readiness events taken per `poll` call.
const EVENTS_CAPACITY: usize = 1_024;
/// Connections opened per loop turn at most, so a late ramp does not
/// starve the clients already running.
const CONNECTS_PER_TURN_MAX: usize = 64;
/// After the window closes, how long Pongs still in flight may arrive
/// before the sessions say Bye.
pub(crate) const PONG_LINGER_US: u64 = 250_000;

/// What one worker does, cut from the run's configuration.
pub(crate) struct Plan {
    pub(crate) clients: usize,
    pub(crate) first_client: usize,
    /// Between two connects of this worker.
    pub(crate) ramp_interval_us: u64,
    /// When this worker's first connect is due (workers interleave).
    pub(crate) ramp_start_us: u64,
    /// Zero: idle clients.
    ping_interval_us: u64,
    channel: Channel,
    endpoint: Arc<Endpoint>,
    clock: Clock,
    timeline: Timeline,
    pin_core: Option<usize>,
    nickname_prefix: String,
    index: usize,
    total_clients: usize,
    bots: Option<BotsConfig>,
    /// Where the per-second samples go (none in unit tests).
    pub(crate) samples: Option<mpsc::Sender<WorkerSample>>,
}

impl Plan {
    pub(crate) fn new(
        config: &LoadConfig,
        index: usize,
        endpoint: Arc<Endpoint>,
        clock: Clock,
        timeline: Timeline,
    ) -> Plan {
        let threads = config.threads;
        let clients = config.clients / threads + usize::from(index < config.clients % threads);
        let first_client = (0..index)
            .map(|earlier| {
                config.clients / threads + usize::from(earlier < config.clients % threads)
            })
            .sum();
        let per_connect_us = 1_000_000 / u64::from(config.ramp_per_second).max(1);
        Plan {
            clients,
            first_client,
            ramp_interval_us: per_connect_us.max(1) * threads as u64,
            ramp_start_us: timeline.start_us + per_connect_us * index as u64,
            ping_interval_us: config.ping_interval.as_micros() as u64,
            channel: match config.channel {
                PingChannel::Stream => Channel::Reliable,
                PingChannel::Datagram => Channel::Datagram,
            },
            endpoint,
            clock,
            timeline,
            pin_core: (!config.pin_cores.is_empty())
                .then(|| config.pin_cores[index % config.pin_cores.len()]),
            nickname_prefix: config.nickname_prefix.clone(),
            index,
            total_clients: config.clients,
            bots: config.bots,
            samples: None,
        }
    }
}

/// A client of either transport, boxed: the slab entry stays small.
enum Connection {
    Wt(Box<WtClient>),
    Ws(Box<WsClient>),
}

macro_rules! both {
    ($connection:expr, $client:ident => $body:expr) => {
        match $connection {
            Connection::Wt($client) => $body,
            Connection::Ws($client) => $body,
        }
    };
}

impl Connection {
    fn register(&mut self, registry: &mio::Registry, token: Token) -> std::io::Result<()> {
        both!(self, client => client.register(registry, token))
    }

    fn deregister(&mut self, registry: &mio::Registry) {
        let _ = both!(self, client => client.deregister(registry));
    }

    fn session_mut(&mut self) -> &mut crate::client::ClientSession {
        both!(self, client => client.session_mut())
    }

    fn poll_event(&mut self) -> Option<ClientEvent> {
        both!(self, client => client.poll_event())
    }

    fn on_readable(&mut self, now: Now) {
        both!(self, client => client.on_readable(now))
    }

    fn on_writable(&mut self, now: Now) {
        both!(self, client => client.on_writable(now))
    }

    fn on_timeout(&mut self, now: Now) {
        both!(self, client => client.on_timeout(now))
    }

    fn flush(&mut self, now: Now) {
        both!(self, client => client.flush(now))
    }

    fn poll_timeout(&self) -> Option<u64> {
        both!(self, client => client.poll_timeout())
    }

    fn is_done(&self) -> bool {
        both!(self, client => client.is_done())
    }

    fn take_error(&mut self) -> Option<ClientError> {
        both!(self, client => client.take_error())
    }
}

/// Per-client state besides the client itself: a few words.
struct Slot {
    connection: Connection,
    established: bool,
    /// Counted already (a failure or a lost session).
    accounted: bool,
    next_ping_us: u64,
    number: u32,
    connect_started_us: u64,
    /// A dropped transport's replacement, not yet welcomed.
    resuming: bool,
    /// The game bot (`ludus bots`); None in the echo load.
    bot: Option<Box<Bot>>,
}

struct Worker {
    plan: Plan,
    poll: Poll,
    slots: Slab<Slot>,
    wheel: TimerWheel,
    due: Vec<TimerKey>,
    quiche: Option<quiche::Config>,
    wt_options: Option<WtOptions>,
    stats: ThreadStats,
    started: usize,
    established: u64,
    measure_recorded: bool,
    /// Past the window: no more Pings.
    pinging_over: bool,
    /// Sessions told to close.
    closing: bool,
    /// Acknowledgement latencies since the last sample.
    interval_ack_us: Histogram<u64>,
    next_sample_us: u64,
    /// Traffic of the sessions already removed.
    traffic_retired: Traffic,
    traffic_at_window_start: Traffic,
}

/// Runs one worker to the end of the timeline and returns its counts.
pub(crate) fn run(plan: Plan) -> Result<ThreadStats, String> {
    if let Some(core) = plan.pin_core {
        sys::pin_to_core(core).map_err(|error| format!("pinning to core {core}: {error}"))?;
    }
    let mut worker = Worker::new(plan)?;
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    loop {
        let now = worker.plan.clock.now();
        worker.advance_phase(now);
        if worker.finished(now) {
            break;
        }
        worker.connect_due(now);
        worker.fire_timers();
        worker.sample(worker.plan.clock.now());
        if worker.finished(worker.plan.clock.now()) {
            // The timers closed the last client: do not wait in poll.
            break;
        }
        let timeout = worker.poll_timeout();
        match worker.poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("poll: {error}")),
        }
        for event in events.iter() {
            worker.on_event(event);
        }
    }
    worker.stats.clients_unclosed = worker.slots.len() as u64;
    worker.stats.cpu_time = sys::thread_cpu_time();
    Ok(worker.stats)
}

impl Worker {
    fn new(plan: Plan) -> Result<Worker, String> {
        let poll = Poll::new().map_err(|error| format!("mio Poll: {error}"))?;
        let (quiche, wt_options) = match plan.endpoint.as_ref() {
            Endpoint::WebTransport { cert_sha256, .. } => (
                Some(wt::quiche_config().map_err(|error| error.to_string())?),
                Some(WtOptions::new(Trust::CertificateHash(*cert_sha256))),
            ),
            Endpoint::WebSocket { .. } => (None, None),
        };
        let now_ms = plan.clock.now().monotonic_us / 1_000;
        let first_sample_us = plan.timeline.start_us + SAMPLE_INTERVAL_US;
        Ok(Worker {
            slots: Slab::with_capacity(plan.clients),
            wheel: TimerWheel::new(now_ms),
            due: Vec::with_capacity(EVENTS_CAPACITY),
            plan,
            poll,
            quiche,
            wt_options,
            stats: ThreadStats::new(),
            started: 0,
            established: 0,
            measure_recorded: false,
            pinging_over: false,
            closing: false,
            interval_ack_us: new_histogram(),
            next_sample_us: first_sample_us,
            traffic_retired: Traffic::default(),
            traffic_at_window_start: Traffic::default(),
        })
    }

    fn in_window(&self, at_us: u64) -> bool {
        let timeline = &self.plan.timeline;
        (timeline.measure_start_us..timeline.measure_end_us).contains(&at_us)
    }

    /// Window opening, end of Pings, closing: each happens once.
    fn advance_phase(&mut self, now: Now) {
        let timeline = self.plan.timeline;
        if !self.measure_recorded && now.monotonic_us >= timeline.measure_start_us {
            self.measure_recorded = true;
            self.stats.connected_at_measure_start = self.established;
            self.traffic_at_window_start = self.traffic_total();
        }
        if !self.pinging_over && now.monotonic_us >= timeline.measure_end_us {
            self.pinging_over = true;
            self.stats.connected_at_measure_end = self.established;
            self.stats.traffic = self.traffic_total().since(&self.traffic_at_window_start);
            self.stats.rooms = self.rooms();
            self.leave_rooms(now);
        }
        if !self.closing && now.monotonic_us >= timeline.measure_end_us + PONG_LINGER_US {
            self.close_all(now);
        }
    }

    /// Every session's traffic since the start, removed ones included.
    fn traffic_total(&mut self) -> Traffic {
        let mut total = self.traffic_retired;
        for (_, slot) in self.slots.iter_mut() {
            total.add(&slot.connection.session_mut().traffic());
        }
        total
    }

    /// The rooms the bots are in now, each once.
    fn rooms(&self) -> Vec<u64> {
        let mut rooms: Vec<u64> = self
            .slots
            .iter()
            .filter_map(|(_, slot)| slot.bot.as_ref().and_then(|bot| bot.room_id()))
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        rooms
    }

    /// Once a second: what the run's progress line and plot need.
    fn sample(&mut self, now: Now) {
        if now.monotonic_us < self.next_sample_us || self.plan.samples.is_none() {
            return;
        }
        self.next_sample_us = (self.next_sample_us + SAMPLE_INTERVAL_US)
            .max(now.monotonic_us + SAMPLE_INTERVAL_US / 2);
        let ack_us = self.interval_ack_us.clone();
        self.interval_ack_us.reset();
        let sample = WorkerSample {
            worker: self.plan.index,
            connected: self.established,
            traffic: self.traffic_total(),
            ack_us,
            rooms: self.rooms(),
            errors: self.stats.errors.total(),
        };
        if let Some(samples) = &self.plan.samples {
            // The run stopped listening: nothing to report to.
            let _ = samples.send(sample);
        }
    }

    fn finished(&self, now: Now) -> bool {
        self.closing
            && (self.slots.is_empty() || now.monotonic_us >= self.plan.timeline.drain_end_us)
    }

    /// How long `poll` may wait: the next timer, connect or phase change.
    fn poll_timeout(&self) -> Duration {
        let now = self.plan.clock.now();
        let now_us = now.monotonic_us;
        let timeline = self.plan.timeline;
        let mut deadline_us = [
            timeline.measure_start_us,
            timeline.measure_end_us,
            timeline.measure_end_us + PONG_LINGER_US,
            timeline.drain_end_us,
        ]
        .into_iter()
        .filter(|&at_us| at_us > now_us)
        .min()
        .unwrap_or(now_us + 100_000);
        if self.started < self.plan.clients && !self.closing {
            deadline_us = deadline_us.min(self.next_connect_us());
        }
        if let Some(timer_ms) = self.wheel.timeout_ms(now_us / 1_000) {
            deadline_us = deadline_us.min(now_us + timer_ms * 1_000);
        }
        if self.plan.samples.is_some() {
            deadline_us = deadline_us.min(self.next_sample_us);
        }
        Duration::from_micros(deadline_us.saturating_sub(now_us))
    }

    fn next_connect_us(&self) -> u64 {
        self.plan.ramp_start_us + self.started as u64 * self.plan.ramp_interval_us
    }

    // ----- connecting -----

    fn connect_due(&mut self, now: Now) {
        let mut opened = 0;
        while self.started < self.plan.clients
            && !self.closing
            && opened < CONNECTS_PER_TURN_MAX
            && self.next_connect_us() <= now.monotonic_us
        {
            self.connect_one(self.plan.clock.now());
            opened += 1;
        }
    }

    fn connect_one(&mut self, now: Now) {
        let number = (self.plan.first_client + self.started) as u32;
        self.started += 1;
        self.stats.clients_started += 1;
        let mut connection = match self.open(now) {
            Ok(connection) => connection,
            Err(error) => return self.connect_failed(&error.to_string()),
        };
        let nickname = format!("{}-{number}", self.plan.nickname_prefix);
        if let Err(error) = connection.session_mut().hello(&Credentials::guest(&nickname), now) {
            return self.connect_failed(&format!("hello: {error}"));
        }
        let entry = self.slots.vacant_entry();
        let index = entry.key();
        if let Err(error) = connection.register(self.poll.registry(), Token(index)) {
            return self.connect_failed(&format!("register: {error}"));
        }
        let bot = self.plan.bots.map(|bots| {
            let role = bots.role_of(number as usize, self.plan.total_clients);
            let bot = Bot::new(role, bots.options, number);
            let reconnects = role == Role::Player && bots.reconnects(number as usize);
            Box::new(if reconnects { bot.reconnecting() } else { bot })
        });
        entry.insert(Slot {
            connection,
            established: false,
            accounted: false,
            next_ping_us: 0,
            number,
            connect_started_us: now.monotonic_us,
            resuming: false,
            bot,
        });
        self.slots[index].connection.flush(now);
        self.after_io(index, now);
    }

    fn open(&mut self, now: Now) -> Result<Connection, ClientError> {
        match self.plan.endpoint.as_ref() {
            Endpoint::WebTransport { address, .. } => {
                let options = self.wt_options.as_ref().expect("built for WebTransport");
                let config = self.quiche.as_mut().expect("built for WebTransport");
                let client = WtClient::connect(*address, options, config, now)?;
                Ok(Connection::Wt(Box::new(client)))
            }
            Endpoint::WebSocket { address, url, options } => {
                let client = WsClient::connect(*address, url, options, now)?;
                Ok(Connection::Ws(Box::new(client)))
            }
        }
    }

    fn connect_failed(&mut self, reason: &str) {
        self.stats.connect_failures += 1;
        self.stats.errors.add(format!("connect: {}", first_words(reason)));
    }

    // ----- readiness and timers -----

    fn on_event(&mut self, event: &mio::event::Event) {
        let index = event.token().0;
        let now = self.plan.clock.now();
        let Some(slot) = self.slots.get_mut(index) else { return };
        if event.is_readable() || event.is_error() || event.is_read_closed() {
            slot.connection.on_readable(now);
        } else {
            slot.connection.on_writable(now);
        }
        self.after_io(index, now);
    }

    fn fire_timers(&mut self) {
        let now = self.plan.clock.now();
        let mut due = std::mem::take(&mut self.due);
        self.wheel.expire(now.monotonic_us / 1_000, |key, _| due.push(key));
        for key in due.drain(..) {
            let index = key.owner as usize;
            match key.kind {
                TIMER_PING => self.ping(index),
                TIMER_BOT => self.wake_bot(index),
                _ => {
                    let now = self.plan.clock.now();
                    if let Some(slot) = self.slots.get_mut(index) {
                        slot.connection.on_timeout(now);
                        self.after_io(index, now);
                    }
                }
            }
        }
        self.due = due;
    }

    /// Events of a client after any call into it; re-arms its deadline or
    /// removes it when it is done.
    fn after_io(&mut self, index: usize, now: Now) {
        while let Some(event) = self.slots[index].connection.poll_event() {
            match event {
                ClientEvent::Welcome(_) => self.on_welcome(index, now),
                ClientEvent::Pong(sample) => {
                    // Counted by when its Ping left (the server's hold time
                    // is excluded from the RTT and is about zero).
                    let sent_us = now.monotonic_us.saturating_sub(sample.rtt_us);
                    if self.in_window(sent_us) {
                        self.stats.pongs_received += 1;
                        self.stats.rtt_us.saturating_record(sample.rtt_us.max(1));
                    }
                }
                ClientEvent::Closed(reason) => self.on_closed(index, &reason),
                ClientEvent::Message(message) => self.bot_message(index, &message, now),
            }
        }
        let slot = &mut self.slots[index];
        if slot.bot.is_some() && slot.connection.session_mut().pending_bytes() > 0 {
            // What the bot queued in answer goes out now.
            slot.connection.flush(now);
        }
        if slot.connection.is_done() {
            return self.remove(index);
        }
        let bot_key = TimerKey { owner: index as u32, kind: TIMER_BOT };
        match slot.bot.as_ref().and_then(|bot| bot.wake_at_us()) {
            Some(wake_us) if !self.closing => {
                let _ = self.wheel.arm(bot_key, wake_us.div_ceil(1_000));
            }
            _ => self.wheel.cancel(bot_key),
        }
        let key = TimerKey { owner: index as u32, kind: TIMER_TRANSPORT };
        match slot.connection.poll_timeout() {
            Some(deadline_us) => {
                let _ = self.wheel.arm(key, deadline_us.div_ceil(1_000));
            }
            None => self.wheel.cancel(key),
        }
    }

    fn on_welcome(&mut self, index: usize, now: Now) {
        self.established += 1;
        let interval_us = self.plan.ping_interval_us;
        let in_window = self.in_window(now.monotonic_us);
        let Worker { slots, stats, interval_ack_us, closing, .. } = self;
        let slot = &mut slots[index];
        slot.established = true;
        if !std::mem::take(&mut slot.resuming) {
            stats.clients_connected += 1;
            let handshake_us = now.monotonic_us.saturating_sub(slot.connect_started_us);
            stats.connect_us.saturating_record(handshake_us.max(1));
        }
        if let Some(bot) = slot.bot.as_mut() {
            if !*closing {
                let mut meter = Meter { in_window, stats, interval_ack_us };
                bot.on_established(slot.connection.session_mut(), now, &mut meter);
            }
        }
        if interval_us == 0 || self.pinging_over {
            return;
        }
        // Spread the clients' Pings over the interval.
        let jitter_us = (u64::from(slot.number) * 7_919) % interval_us;
        slot.next_ping_us = now.monotonic_us + jitter_us;
        let key = TimerKey { owner: index as u32, kind: TIMER_PING };
        let _ = self.wheel.arm(key, slot.next_ping_us.div_ceil(1_000));
    }

    fn on_closed(&mut self, index: usize, reason: &CloseReason) {
        let closing = self.closing;
        let slot = &mut self.slots[index];
        if slot.established {
            self.established -= 1;
        }
        if closing || slot.accounted {
            return;
        }
        slot.accounted = true;
        if slot.established {
            self.stats.sessions_lost += 1;
            self.stats.errors.add(format!("session lost: {}", describe(reason)));
            return;
        }
        let detail = match slot.connection.take_error() {
            Some(error) => error.to_string(),
            None => describe(reason),
        };
        self.connect_failed(&detail);
    }

    /// A message for the bot: it may answer (flushed by `after_io`).
    fn bot_message(&mut self, index: usize, message: &crate::proto::wire::Message, now: Now) {
        let in_window = self.in_window(now.monotonic_us);
        let Worker { slots, stats, interval_ack_us, closing, .. } = self;
        let slot = &mut slots[index];
        let Some(bot) = slot.bot.as_mut() else { return };
        if *closing {
            return;
        }
        let mut meter = Meter { in_window, stats, interval_ack_us };
        bot.on_message(message, slot.connection.session_mut(), now, &mut meter);
    }

    fn wake_bot(&mut self, index: usize) {
        let now = self.plan.clock.now();
        let in_window = self.in_window(now.monotonic_us);
        let Worker { slots, stats, interval_ack_us, closing, .. } = self;
        let Some(slot) = slots.get_mut(index) else { return };
        let Some(bot) = slot.bot.as_mut() else { return };
        if *closing {
            return;
        }
        let mut meter = Meter { in_window, stats, interval_ack_us };
        bot.on_wake(slot.connection.session_mut(), now, &mut meter);
        if bot.take_drop_request(now.monotonic_us) {
            return self.drop_and_resume(index, now);
        }
        slot.connection.flush(now);
        self.after_io(index, now);
    }

    /// Drops a bot's transport as a network failure would (no Bye, no
    /// close) and opens a new one that resumes the session.
    fn drop_and_resume(&mut self, index: usize, now: Now) {
        let credentials = match self.slots[index].bot.as_ref() {
            Some(bot) => bot.resume_credentials(),
            None => return,
        };
        let mut fresh = match self.open(now) {
            Ok(fresh) => fresh,
            Err(error) => {
                self.stats.errors.add(format!("reconnect: {}", first_words(&error.to_string())));
                return;
            }
        };
        if let Err(error) = fresh.session_mut().hello(&credentials, now) {
            self.stats.errors.add(format!("reconnect: hello: {error}"));
            return;
        }
        let slot = &mut self.slots[index];
        let mut old = std::mem::replace(&mut slot.connection, fresh);
        old.deregister(self.poll.registry());
        self.traffic_retired.add(&old.session_mut().traffic());
        drop(old);
        if slot.established {
            self.established -= 1;
        }
        slot.established = false;
        slot.resuming = true;
        slot.connect_started_us = now.monotonic_us;
        self.stats.reconnects += 1;
        if let Err(error) = slot.connection.register(self.poll.registry(), Token(index)) {
            self.stats.errors.add(format!("reconnect: register: {error}"));
        }
        self.wheel.cancel(TimerKey { owner: index as u32, kind: TIMER_PING });
        let slot = &mut self.slots[index];
        slot.connection.flush(now);
        self.after_io(index, now);
    }

    fn remove(&mut self, index: usize) {
        let mut slot = self.slots.remove(index);
        slot.connection.deregister(self.poll.registry());
        self.traffic_retired.add(&slot.connection.session_mut().traffic());
        for kind in [TIMER_TRANSPORT, TIMER_PING, TIMER_BOT] {
            self.wheel.cancel(TimerKey { owner: index as u32, kind });
        }
        if !self.closing && !slot.accounted {
            // Done without a Closed event: count it all the same.
            let detail = slot.connection.take_error().map_or("done".to_owned(), |e| e.to_string());
            if slot.established {
                self.established -= 1;
                self.stats.sessions_lost += 1;
                self.stats.errors.add(format!("session lost: {}", first_words(&detail)));
            } else {
                self.connect_failed(&detail);
            }
        }
    }

    // ----- pings and the end -----

    fn ping(&mut self, index: usize) {
        let now = self.plan.clock.now();
        let interval_us = self.plan.ping_interval_us;
        let channel = self.plan.channel;
        if self.pinging_over {
            return;
        }
        let in_window = self.in_window(now.monotonic_us);
        let Some(slot) = self.slots.get_mut(index) else { return };
        if !slot.established {
            // Resuming after a drop: its Welcome re-arms the Pings.
            return;
        }
        let mut next_us = slot.next_ping_us + interval_us;
        if next_us <= now.monotonic_us {
            // Behind by a whole interval: skip ahead rather than burst.
            if in_window {
                self.stats.pings_late += 1;
            }
            next_us = now.monotonic_us + interval_us;
        }
        slot.next_ping_us = next_us;
        let key = TimerKey { owner: index as u32, kind: TIMER_PING };
        let _ = self.wheel.arm(key, next_us.div_ceil(1_000));
        match slot.connection.session_mut().ping(channel, now) {
            Ok(_) if in_window => self.stats.pings_sent += 1,
            Ok(_) => {}
            Err(error) => self.stats.errors.add(send_error_reason(&error)),
        }
        slot.connection.flush(now);
        self.after_io(index, now);
    }

    /// Every game bot leaves its room (its game ends by forfeit, recorded).
    fn leave_rooms(&mut self, now: Now) {
        let indices: Vec<usize> = self.slots.iter().map(|(index, _)| index).collect();
        for index in indices {
            let slot = &mut self.slots[index];
            let Some(bot) = slot.bot.as_mut() else { continue };
            bot.leave_at_end(slot.connection.session_mut());
            slot.connection.flush(now);
            self.after_io(index, now);
        }
    }

    /// Every session says Bye; the transports close as the server answers.
    fn close_all(&mut self, now: Now) {
        self.closing = true;
        self.pinging_over = true;
        let indices: Vec<usize> = self.slots.iter().map(|(index, _)| index).collect();
        for index in indices {
            let slot = &mut self.slots[index];
            slot.connection.session_mut().close(ErrorCode::None, "load done");
            slot.connection.flush(now);
            self.after_io(index, now);
        }
    }
}

fn describe(reason: &CloseReason) -> String {
    let source = match reason.source {
        CloseSource::Local => "by client",
        CloseSource::Peer => "by server",
        CloseSource::Transport => "transport",
    };
    let code = match reason.error_code() {
        Some(code) => format!("{code:?}"),
        None => format!("code {}", reason.code),
    };
    format!("{source}: {code}: {}", first_words(&reason.reason))
}

/// Keeps error keys few: reasons are cut at 80 bytes.
fn first_words(text: &str) -> &str {
    let mut end = text.len().min(80);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn send_error_reason(error: &SendError) -> &'static str {
    match error {
        SendError::WrongState(_) => "ping: session not established",
        SendError::Backpressure(_) => "ping: outbox full (backpressure)",
        SendError::ServerMessage(_) | SendError::TooLong { .. } => "ping: refused",
    }
}
