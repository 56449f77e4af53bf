//! One consumer group under the classic rebalance protocol, as Kafka's `GroupCoordinator` runs it:
//! Empty → PreparingRebalance (members (re)join) → CompletingRebalance (the leader computes the
//! assignment and sends it with its SyncGroup) → Stable; a member leaving, dying (no heartbeat
//! within its session timeout) or joining again with other protocols starts a new rebalance.
//! The coordinator only relays the leader's assignment. Static members (KIP-345, a
//! `group.instance.id`): one joining without a member id takes the place of the member with its
//! instance id, keeping its assignment (no rebalance while the group is stable), and the member
//! id it replaced is fenced (FENCED_INSTANCE_ID); a static member that did not rejoin in time is
//! not dropped at the end of a join phase (only when its session expires). No I/O: answers that must wait (JoinGroup
//! until every member rejoined, SyncGroup until the leader's assignment) go through oneshot
//! channels that the API handlers await; so does the leader's assignment, which the caller
//! writes to `__consumer_offsets` before the members get it ([`Group::assignment_stored`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use super::records;
use crate::limits;

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups use.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// A JoinGroup answer, before it is encoded for the request's version.
#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinOutcome {
    pub fn error(code: i16, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error_code: code,
            generation_id: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn error(code: i16) -> SyncOutcome {
        SyncOutcome {
            error_code: code,
            ..SyncOutcome::default()
        }
    }
}

/// What a JoinGroup asks.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a member without an id gets one with MEMBER_ID_REQUIRED and joins again (KIP-394).
    pub require_known_member_id: bool,
}

/// A leader's assignment for one generation and the group metadata record (value v3) that holds
/// it, to be written to `__consumer_offsets` before the members get it.
#[derive(Debug)]
pub struct StoreAssignment {
    pub generation_id: i32,
    pub assignments: BTreeMap<String, Bytes>,
    pub value: Bytes,
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Either the answer now, or a channel the answer will come through.
pub enum Pending<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
    session_deadline: Instant,
    /// Join order: the first member still present leads.
    order: u64,
}

/// The topic names of a consumer's subscription metadata (i16 version, i32 count, i16-length
/// strings); what cannot be read ends the list.
fn subscription_topics(metadata: &[u8]) -> Vec<String> {
    let mut buf = metadata;
    let take = |buf: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        if buf.len() < n {
            return None;
        }
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        Some(head.to_vec())
    };
    let mut topics = Vec::new();
    let Some(_version) = take(&mut buf, 2) else {
        return topics;
    };
    let Some(count) = take(&mut buf, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return topics;
    };
    for _ in 0..count.max(0) {
        let Some(len) = take(&mut buf, 2).map(|b| i16::from_be_bytes([b[0], b[1]])) else {
            break;
        };
        let Some(name) = take(&mut buf, usize::try_from(len).unwrap_or(0)) else {
            break;
        };
        match String::from_utf8(name) {
            Ok(name) => topics.push(name),
            Err(_) => break,
        }
    }
    topics
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until their second join (or the deadline).
    pending_members: BTreeMap<String, Instant>,
    /// PreparingRebalance: when the join phase ends whoever has not rejoined.
    join_deadline: Option<Instant>,
    /// First rebalance of an empty group: wait at least until then for more members.
    initial_delay_until: Option<Instant>,
    initial_delay_limit: Option<Instant>,
    next_order: u64,
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            join_deadline: None,
            initial_delay_until: None,
            initial_delay_limit: None,
            next_order: 0,
        }
    }

    /// Whether a group with no members and no rebalance going on may be forgotten.
    pub fn is_idle(&self) -> bool {
        self.members.is_empty()
            && self.pending_members.is_empty()
            && self.state == GroupState::Empty
    }

    /// The topics the members of a `consumer` group subscribe to (read from each member's
    /// subscription, Kafka's `ConsumerProtocolSubscription`: version, topic names, ...), or `None`
    /// when the group uses another protocol type (its subscriptions cannot be read).
    pub fn subscribed_topics(&self) -> Option<std::collections::BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        Some(
            self.members
                .values()
                .flat_map(|m| subscription_topics(&m.metadata_for(protocol)))
                .collect(),
        )
    }

    /// The member id of the static member with `instance`, if there is one.
    pub fn static_member_id(&self, instance: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.group_instance_id.as_deref() == Some(instance))
            .map(|m| m.id.as_str())
    }

    /// FENCED_INSTANCE_ID when `instance` belongs to a static member with another member id
    /// (Kafka's `isStaticMemberFenced`): an older instance of a restarted static member.
    fn fenced(&self, member_id: &str, instance: Option<&str>) -> Result<(), i16> {
        match instance.and_then(|i| self.static_member_id(i)) {
            Some(current) if current != member_id => Err(code(ResponseError::FencedInstanceId)),
            _ => Ok(()),
        }
    }

    /// Protocols every member (and the candidate) supports.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// JoinGroup (Kafka's `handleJoinGroup` for an existing or new group).
    pub fn join(
        &mut self,
        request: JoinRequest,
        new_member_id: impl FnOnce() -> String,
        initial_rebalance_delay: Duration,
        now: Instant,
    ) -> Pending<JoinOutcome> {
        if !self.supports(&request.protocol_type, &request.protocols) {
            return Pending::Now(JoinOutcome::error(
                code(ResponseError::InconsistentGroupProtocol),
                &request.member_id,
            ));
        }
        if let Some(instance) = request.group_instance_id.as_deref() {
            if request.member_id.is_empty() {
                if let Some(old_id) = self.static_member_id(instance).map(str::to_string) {
                    let new_id = new_member_id();
                    return self.replace_static_member(request, old_id, new_id, now);
                }
            } else if let Err(e) = self.fenced(&request.member_id, Some(instance)) {
                return Pending::Now(JoinOutcome::error(e, &request.member_id));
            }
        }
        if request.member_id.is_empty() {
            if self.members.len() + self.pending_members.len() >= limits::GROUP_MEMBERS_MAX {
                return Pending::Now(JoinOutcome::error(
                    code(ResponseError::GroupMaxSizeReached),
                    "",
                ));
            }
            let member_id = new_member_id();
            // A new static member joins at once (Kafka's `doStaticNewMemberJoinGroup`).
            if request.require_known_member_id && request.group_instance_id.is_none() {
                let session =
                    Duration::from_millis(u64::try_from(request.session_timeout_ms).unwrap_or(0));
                self.pending_members
                    .insert(member_id.clone(), now + session);
                return Pending::Now(JoinOutcome::error(
                    code(ResponseError::MemberIdRequired),
                    &member_id,
                ));
            }
            return self.add_member_and_rebalance(request, member_id, initial_rebalance_delay, now);
        }
        if self.pending_members.remove(&request.member_id).is_some() {
            let member_id = request.member_id.clone();
            return self.add_member_and_rebalance(request, member_id, initial_rebalance_delay, now);
        }
        let Some(member) = self.members.get(&request.member_id) else {
            return Pending::Now(JoinOutcome::error(
                code(ResponseError::UnknownMemberId),
                &request.member_id,
            ));
        };
        let same_protocols = member.protocols == request.protocols;
        let is_leader = self.leader.as_deref() == Some(request.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(request, now),
            GroupState::CompletingRebalance if same_protocols => {
                // A retried join: the same answer as the first time.
                Pending::Now(self.join_outcome_for(&request.member_id))
            }
            GroupState::Stable if same_protocols && !is_leader => {
                Pending::Now(self.join_outcome_for(&request.member_id))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(request, now)
            }
            GroupState::Empty => Pending::Now(JoinOutcome::error(
                code(ResponseError::UnknownMemberId),
                &request.member_id,
            )),
        }
    }

    /// A static member joined again without a member id: it takes the place (assignment, join
    /// order, leadership) of the member `old_id` with its instance id, which is fenced. In a
    /// stable group whose protocol does not change, it is answered at once with the current
    /// generation and the old leader id, so that it syncs as a follower and gets its assignment
    /// back without a rebalance (Kafka's `updateStaticMemberAndRebalance`).
    fn replace_static_member(
        &mut self,
        request: JoinRequest,
        old_id: String,
        new_id: String,
        now: Instant,
    ) -> Pending<JoinOutcome> {
        let Some(mut member) = self.members.remove(&old_id) else {
            return Pending::Now(JoinOutcome::error(code(ResponseError::UnknownMemberId), ""));
        };
        let current_leader = self.leader.clone().unwrap_or_default();
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinOutcome::error(
                code(ResponseError::FencedInstanceId),
                &old_id,
            ));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncOutcome::error(code(ResponseError::FencedInstanceId)));
        }
        member.id = new_id.clone();
        member.rebalance_timeout = rebalance_timeout_of(&request);
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout =
            Duration::from_millis(u64::try_from(request.session_timeout_ms).unwrap_or(0));
        member.session_deadline = now + member.session_timeout;
        member.protocols = request.protocols;
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        tracing::info!(group = %self.id, instance = ?member.group_instance_id, old = %old_id, new = %new_id, state = self.state.name(), "static member rejoined");
        self.members.insert(new_id.clone(), member);
        if self.state == GroupState::Stable && self.select_protocol() == self.protocol_name {
            return Pending::Now(JoinOutcome {
                error_code: 0,
                generation_id: self.generation_id,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol_name.clone(),
                leader: current_leader,
                member_id: new_id,
                members: Vec::new(),
            });
        }
        let (sender, receiver) = oneshot::channel();
        if let Some(member) = self.members.get_mut(&new_id) {
            member.join_waiter = Some(sender);
        }
        self.prepare_rebalance(now);
        Pending::Later(receiver)
    }

    fn add_member_and_rebalance(
        &mut self,
        request: JoinRequest,
        member_id: String,
        initial_rebalance_delay: Duration,
        now: Instant,
    ) -> Pending<JoinOutcome> {
        let (sender, receiver) = oneshot::channel();
        let rebalance_timeout = rebalance_timeout_of(&request);
        let member = Member {
            id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout: Duration::from_millis(
                u64::try_from(request.session_timeout_ms).unwrap_or(0),
            ),
            rebalance_timeout,
            protocols: request.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(sender),
            sync_waiter: None,
            session_deadline: now + rebalance_timeout,
            order: self.next_order,
        };
        self.next_order += 1;
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type);
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        self.members.insert(member_id, member);
        if self.state == GroupState::Empty {
            // Kafka's InitialDelayedJoin: give the other members of a starting application a
            // moment, each new member extending the wait, up to the rebalance timeout.
            self.initial_delay_until = Some(now + initial_rebalance_delay);
            self.initial_delay_limit = Some(now + rebalance_timeout);
        } else if let (Some(_), Some(limit)) = (self.initial_delay_until, self.initial_delay_limit)
        {
            self.initial_delay_until = Some((now + initial_rebalance_delay).min(limit));
        }
        self.prepare_rebalance(now);
        Pending::Later(receiver)
    }

    fn update_member_and_rebalance(
        &mut self,
        request: JoinRequest,
        now: Instant,
    ) -> Pending<JoinOutcome> {
        let (sender, receiver) = oneshot::channel();
        let Some(member) = self.members.get_mut(&request.member_id) else {
            return Pending::Now(JoinOutcome::error(
                code(ResponseError::UnknownMemberId),
                &request.member_id,
            ));
        };
        member.rebalance_timeout = rebalance_timeout_of(&request);
        member.session_timeout =
            Duration::from_millis(u64::try_from(request.session_timeout_ms).unwrap_or(0));
        member.protocols = request.protocols;
        if let Some(previous) = member.join_waiter.replace(sender) {
            // The same member joined again before its first join was answered.
            let _ = previous.send(JoinOutcome::error(
                code(ResponseError::RebalanceInProgress),
                &request.member_id,
            ));
        }
        self.prepare_rebalance(now);
        Pending::Later(receiver)
    }

    /// Enters (or stays in) PreparingRebalance; a pending SyncGroup learns of the new rebalance.
    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ =
                        waiter.send(SyncOutcome::error(code(ResponseError::RebalanceInProgress)));
                }
            }
        }
        if self.state != GroupState::PreparingRebalance {
            let timeout = self
                .members
                .values()
                .map(|m| m.rebalance_timeout)
                .max()
                .unwrap_or_default();
            self.join_deadline = Some(now + timeout);
            self.state = GroupState::PreparingRebalance;
            tracing::info!(group = %self.id, generation = self.generation_id, members = self.members.len(), "preparing rebalance");
        }
        self.try_complete_join(now);
    }

    /// Ends the join phase once every member has rejoined (and any initial delay passed), or when
    /// the rebalance timeout passed (members that did not rejoin are removed).
    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some())
            && self.pending_members.is_empty();
        let delay_over = self.initial_delay_until.is_none_or(|until| now >= until);
        let deadline_passed = self.join_deadline.is_some_and(|d| now >= d);
        if !((all_joined && delay_over) || deadline_passed) {
            return;
        }
        // Static members stay (their session decides); dynamic ones that did not rejoin go.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.group_instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.members.remove(&id);
        }
        self.initial_delay_until = None;
        self.initial_delay_limit = None;
        self.join_deadline = None;
        self.generation_id = self.generation_id.wrapping_add(1).max(1);
        if self.members.is_empty() {
            // As Kafka's `initNextGeneration`: the protocol type stays (ListGroups tells a
            // consumer group that emptied from a simple one by it).
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            tracing::info!(group = %self.id, generation = self.generation_id, "group is empty");
            return;
        }
        self.elect_leader_if_gone();
        self.protocol_name = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        tracing::info!(group = %self.id, generation = self.generation_id, members = self.members.len(), protocol = ?self.protocol_name, leader = ?self.leader, "join phase complete");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let outcome = self.join_outcome_for(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.session_deadline = now + member.session_timeout;
                if let Some(waiter) = member.join_waiter.take() {
                    let _ = waiter.send(outcome);
                }
            }
        }
    }

    fn elect_leader_if_gone(&mut self) {
        let present = self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l));
        if !present {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.order)
                .map(|m| m.id.clone());
        }
    }

    /// Kafka's vote: each member votes for its most preferred protocol that every member
    /// supports; most votes wins (ties: the earlier in the leader's list).
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n))
            {
                *votes.entry(name).or_default() += 1;
            }
        }
        let leader_order: Vec<&String> = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .map(|m| m.protocols.iter().map(|(n, _)| n).collect())
            .unwrap_or_default();
        votes
            .into_iter()
            .max_by(|(a, va), (b, vb)| {
                va.cmp(vb).then_with(|| {
                    let pa = leader_order
                        .iter()
                        .position(|n| n == a)
                        .unwrap_or(usize::MAX);
                    let pb = leader_order
                        .iter()
                        .position(|n| n == b)
                        .unwrap_or(usize::MAX);
                    pb.cmp(&pa)
                })
            })
            .map(|(name, _)| name.clone())
    }

    fn join_outcome_for(&self, member_id: &str) -> JoinOutcome {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == member_id {
            let mut members: Vec<&Member> = self.members.values().collect();
            members.sort_by_key(|m| m.order);
            members
                .into_iter()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.group_instance_id.clone(),
                        m.metadata_for(&protocol),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinOutcome {
            error_code: 0,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Instance, generation and member checks shared by SyncGroup, Heartbeat and OffsetCommit.
    fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), i16> {
        self.fenced(member_id, instance)?;
        if !self.members.contains_key(member_id) {
            return Err(code(ResponseError::UnknownMemberId));
        }
        if generation_id != self.generation_id {
            return Err(code(ResponseError::IllegalGeneration));
        }
        Ok(())
    }

    /// SyncGroup. The leader's assignment is not given to the members at once: it comes back as
    /// a [`StoreAssignment`] that the caller writes to `__consumer_offsets` (the group metadata
    /// record) and hands to [`Self::assignment_stored`]; meanwhile the group stays in
    /// CompletingRebalance and every SyncGroup waits (Kafka's `doSyncGroup` → `storeGroup`).
    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> (Pending<SyncOutcome>, Option<StoreAssignment>) {
        if let Err(e) = self.check_member(member_id, instance, generation_id) {
            return (Pending::Now(SyncOutcome::error(e)), None);
        }
        let outcome = match self.state {
            GroupState::Empty => {
                Pending::Now(SyncOutcome::error(code(ResponseError::UnknownMemberId)))
            }
            GroupState::PreparingRebalance => {
                Pending::Now(SyncOutcome::error(code(ResponseError::RebalanceInProgress)))
            }
            GroupState::Stable => {
                let outcome = self.sync_outcome_for(member_id);
                if let Some(member) = self.members.get_mut(member_id) {
                    member.session_deadline = now + member.session_timeout;
                }
                Pending::Now(outcome)
            }
            GroupState::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.session_deadline = now + member.session_timeout;
                    if let Some(previous) = member.sync_waiter.replace(sender) {
                        let _ = previous
                            .send(SyncOutcome::error(code(ResponseError::RebalanceInProgress)));
                    }
                }
                if self.leader.as_deref() == Some(member_id) {
                    let given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    let store = self.store_assignment(given);
                    return (Pending::Later(receiver), Some(store));
                }
                Pending::Later(receiver)
            }
        };
        (outcome, None)
    }

    /// The group metadata record of this generation with the leader's assignment.
    fn store_assignment(&self, mut given: BTreeMap<String, Bytes>) -> StoreAssignment {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.order);
        let members = members
            .into_iter()
            .map(|m| records::MemberMetadata {
                member_id: m.id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: millis(m.rebalance_timeout),
                session_timeout_ms: millis(m.session_timeout),
                subscription: m.metadata_for(&protocol),
                assignment: given.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect();
        let value = records::group_metadata_value(&records::GroupMetadata {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: crate::internal_topic::now_ms(),
            members,
        });
        given.retain(|id, _| self.members.contains_key(id));
        StoreAssignment {
            generation_id: self.generation_id,
            assignments: given,
            value,
        }
    }

    /// The group metadata record of a leader's assignment was written (`error` 0) or not: if the
    /// group is still completing that generation, the members get their assignments and the
    /// group is stable, or every waiting SyncGroup gets the error and a new rebalance begins
    /// (Kafka's `setAndPropagateAssignment` / `resetAndPropagateAssignmentError`).
    pub fn assignment_stored(&mut self, store: StoreAssignment, error: i16, now: Instant) {
        if self.state != GroupState::CompletingRebalance
            || self.generation_id != store.generation_id
        {
            return;
        }
        if error != 0 {
            tracing::warn!(group = %self.id, generation = self.generation_id, error, "could not store the group's assignment");
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncOutcome::error(error));
                }
            }
            self.prepare_rebalance(now);
            return;
        }
        let mut given = store.assignments;
        for member in self.members.values_mut() {
            member.assignment = given.remove(&member.id).unwrap_or_default();
        }
        self.state = GroupState::Stable;
        tracing::info!(group = %self.id, generation = self.generation_id, "group is stable");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let outcome = self.sync_outcome_for(&id);
            if let Some(waiter) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                let _ = waiter.send(outcome);
            }
        }
    }

    fn sync_outcome_for(&self, member_id: &str) -> SyncOutcome {
        SyncOutcome {
            error_code: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// Heartbeat: refreshes the session; tells the member when a rebalance is going on.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> i16 {
        if self.state == GroupState::Empty {
            return code(ResponseError::UnknownMemberId);
        }
        if let Err(e) = self.check_member(member_id, instance, generation_id) {
            return e;
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.session_deadline = now + member.session_timeout;
        }
        match self.state {
            GroupState::PreparingRebalance => code(ResponseError::RebalanceInProgress),
            _ => 0,
        }
    }

    /// OffsetCommit's membership check (Kafka: a commit with generation -1 is a simple
    /// consumer's, allowed while the group has no members).
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> i16 {
        if generation_id < 0 && self.state == GroupState::Empty && member_id.is_empty() {
            return 0;
        }
        if self.state == GroupState::Empty && self.members.is_empty() {
            return code(ResponseError::IllegalGeneration);
        }
        if let Err(e) = self.check_member(member_id, instance, generation_id) {
            return e;
        }
        if self.state == GroupState::CompletingRebalance {
            return code(ResponseError::RebalanceInProgress);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.session_deadline = now + member.session_timeout;
        }
        0
    }

    /// LeaveGroup for one member. A static member may be named by its instance id alone (an
    /// empty member id: KIP-345's removal by an admin); with another member's id it is fenced.
    pub fn leave(&mut self, member_id: &str, instance: Option<&str>, now: Instant) -> i16 {
        if !member_id.is_empty() && self.pending_members.remove(member_id).is_some() {
            self.try_complete_join(now);
            return 0;
        }
        if let Some(instance) = instance {
            let Some(current) = self.static_member_id(instance).map(str::to_string) else {
                return code(ResponseError::UnknownMemberId);
            };
            if !member_id.is_empty() && member_id != current {
                return code(ResponseError::FencedInstanceId);
            }
            tracing::info!(group = %self.id, member = %current, instance, "static member left");
            self.remove_member(&current, now);
            return 0;
        }
        if !self.members.contains_key(member_id) {
            return code(ResponseError::UnknownMemberId);
        }
        tracing::info!(group = %self.id, member = %member_id, "member left");
        self.remove_member(member_id, now);
        0
    }

    fn remove_member(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.members.remove(member_id) {
            if let Some(waiter) = member.join_waiter {
                let _ = waiter.send(JoinOutcome::error(
                    code(ResponseError::UnknownMemberId),
                    member_id,
                ));
            }
            if let Some(waiter) = member.sync_waiter {
                let _ = waiter.send(SyncOutcome::error(code(ResponseError::UnknownMemberId)));
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
            self.elect_leader_if_gone();
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now),
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty => {}
        }
    }

    /// Timers: expired sessions (members not waiting in a join), expired pending member ids,
    /// the end of the join phase.
    pub fn tick(&mut self, now: Instant) {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.session_deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "session timed out; member removed");
            self.remove_member(&id, now);
        }
        self.try_complete_join(now);
    }

    /// (member id, client id, host, metadata, assignment) for DescribeGroups.
    pub fn describe_members(&self) -> Vec<(String, Option<String>, String, String, Bytes, Bytes)> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.group_instance_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    m.metadata_for(&protocol),
                    m.assignment.clone(),
                )
            })
            .collect()
    }
}

fn rebalance_timeout_of(request: &JoinRequest) -> Duration {
    let ms = if request.rebalance_timeout_ms > 0 {
        request.rebalance_timeout_ms
    } else {
        request.session_timeout_ms
    };
    Duration::from_millis(
        u64::try_from(ms)
            .unwrap_or(0)
            .min(limits::GROUP_REBALANCE_TIMEOUT_MS_MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(member_id: &str) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            session_timeout_ms: 1000,
            rebalance_timeout_ms: 2000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
        }
    }

    /// SyncGroup, the leader's assignment stored at once.
    fn sync_stored(
        group: &mut Group,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Pending<SyncOutcome> {
        let (pending, store) = group.sync(member_id, instance, generation_id, assignments, now);
        if let Some(store) = store {
            group.assignment_stored(store, 0, now);
        }
        pending
    }

    fn later<T>(p: Pending<T>) -> oneshot::Receiver<T> {
        match p {
            Pending::Later(r) => r,
            Pending::Now(_) => panic!("expected a wait"),
        }
    }

    fn now_outcome<T>(p: Pending<T>) -> T {
        match p {
            Pending::Now(t) => t,
            Pending::Later(_) => panic!("expected an answer now"),
        }
    }

    #[test]
    fn two_members_join_sync_and_a_dead_one_is_removed() {
        let t0 = Instant::now();
        let mut group = Group::new("g");
        let mut ids = ["a".to_string(), "b".to_string()].into_iter();
        let first = now_outcome(group.join(
            request(""),
            || ids.next().unwrap_or_default(),
            Duration::ZERO,
            t0,
        ));
        assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
        let mut a_join = later(group.join(request("a"), || unreachable!(), Duration::ZERO, t0));
        // A single member: the join completes at once (no initial delay).
        let a = a_join.try_recv().expect("answered");
        assert_eq!(
            (a.generation_id, a.leader.as_str(), a.members.len()),
            (1, "a", 1)
        );
        let mut a_sync = later(sync_stored(
            &mut group,
            "a",
            None,
            1,
            vec![("a".into(), Bytes::from_static(b"all"))],
            t0,
        ));
        assert_eq!(
            a_sync.try_recv().expect("stable").assignment,
            Bytes::from_static(b"all")
        );
        // b joins: a rebalance; a's heartbeat says so; both rejoin.
        let b_id =
            now_outcome(group.join(request(""), || "b".into(), Duration::ZERO, t0)).member_id;
        let mut b_join = later(group.join(request(&b_id), || unreachable!(), Duration::ZERO, t0));
        assert_eq!(
            group.heartbeat("a", None, 1, t0),
            ResponseError::RebalanceInProgress.code()
        );
        assert!(b_join.try_recv().is_err(), "waits for a");
        let mut a_join = later(group.join(request("a"), || unreachable!(), Duration::ZERO, t0));
        let a = a_join.try_recv().expect("answered");
        let b = b_join.try_recv().expect("answered");
        assert_eq!((a.generation_id, b.generation_id), (2, 2));
        assert_eq!((a.members.len(), b.members.len()), (2, 0));
        // Stale generation is fenced.
        assert_eq!(
            now_outcome(sync_stored(&mut group, "b", None, 1, vec![], t0)).error_code,
            ResponseError::IllegalGeneration.code()
        );
        let mut b_sync = later(sync_stored(&mut group, "b", None, 2, vec![], t0));
        assert!(b_sync.try_recv().is_err(), "waits for the leader");
        let mut a_sync = later(sync_stored(
            &mut group,
            "a",
            None,
            2,
            vec![
                ("a".into(), Bytes::from_static(b"p0")),
                ("b".into(), Bytes::from_static(b"p1")),
            ],
            t0,
        ));
        assert_eq!(
            a_sync.try_recv().expect("a").assignment,
            Bytes::from_static(b"p0")
        );
        assert_eq!(
            b_sync.try_recv().expect("b").assignment,
            Bytes::from_static(b"p1")
        );
        assert_eq!(group.state, GroupState::Stable);
        // b stops heartbeating; a keeps on. After b's session: a rebalance without b.
        let t1 = t0 + Duration::from_millis(800);
        assert_eq!(group.heartbeat("a", None, 2, t1), 0);
        group.tick(t0 + Duration::from_millis(1100));
        assert!(!group.members.contains_key("b"));
        assert_eq!(group.state, GroupState::PreparingRebalance);
        let mut a_join = later(group.join(request("a"), || unreachable!(), Duration::ZERO, t1));
        let a = a_join.try_recv().expect("alone");
        assert_eq!((a.generation_id, a.members.len()), (3, 1));
        assert_eq!(
            group.heartbeat("b", None, 3, t1),
            ResponseError::UnknownMemberId.code()
        );
    }

    #[test]
    fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
        let t0 = Instant::now();
        let mut group = Group::new("g");
        let mut old = request("");
        old.require_known_member_id = false;
        let mut a_join = later(group.join(old.clone(), || "a".into(), Duration::ZERO, t0));
        a_join.try_recv().expect("joined");
        drop(later(sync_stored(&mut group, "a", None, 1, vec![], t0)));
        let mut b_join = later(group.join(old, || "b".into(), Duration::ZERO, t0));
        // a never rejoins but keeps heartbeating: after 2 s the join ends without it.
        assert_eq!(
            group.heartbeat("a", None, 1, t0 + Duration::from_millis(900)),
            ResponseError::RebalanceInProgress.code()
        );
        group.tick(t0 + Duration::from_millis(1800));
        assert_eq!(
            group.heartbeat("a", None, 1, t0 + Duration::from_millis(1800)),
            ResponseError::RebalanceInProgress.code()
        );
        group.tick(t0 + Duration::from_millis(1999));
        assert!(b_join.try_recv().is_err());
        group.tick(t0 + Duration::from_millis(2000));
        let b = b_join.try_recv().expect("answered");
        assert_eq!((b.generation_id, b.leader.as_str()), (2, "b"));
        assert!(!group.members.contains_key("a"));
    }

    /// Two dynamic members, a leading, both joined generation 2 and not synced yet.
    fn joined_pair(t0: Instant) -> Group {
        let mut group = Group::new("g");
        let mut old = request("");
        old.require_known_member_id = false;
        let mut a_join = later(group.join(old.clone(), || "a".into(), Duration::ZERO, t0));
        a_join.try_recv().expect("a alone");
        drop(later(sync_stored(&mut group, "a", None, 1, vec![], t0)));
        let mut b_join = later(group.join(old, || "b".into(), Duration::ZERO, t0));
        let mut a_join = later(group.join(request("a"), || unreachable!(), Duration::ZERO, t0));
        assert_eq!(a_join.try_recv().expect("a").generation_id, 2);
        assert_eq!(b_join.try_recv().expect("b").generation_id, 2);
        group
    }

    fn p0_p1() -> Vec<(String, Bytes)> {
        vec![
            ("a".into(), Bytes::from_static(b"p0")),
            ("b".into(), Bytes::from_static(b"p1")),
        ]
    }

    #[test]
    fn syncs_wait_until_the_leaders_assignment_is_stored() {
        let t0 = Instant::now();
        let mut group = joined_pair(t0);
        let (a_sync, store) = group.sync("a", None, 2, p0_p1(), t0);
        let mut a_sync = later(a_sync);
        let store = store.expect("the leader's assignment is to be stored");
        assert_eq!(group.state, GroupState::CompletingRebalance);
        assert!(
            a_sync.try_recv().is_err(),
            "not answered before it is stored"
        );
        // The follower's SyncGroup arriving after the leader's waits for the store too.
        let (b_sync, none) = group.sync("b", None, 2, vec![], t0);
        assert!(none.is_none(), "only the leader's sync stores");
        let mut b_sync = later(b_sync);
        let key = records::group_metadata_key("g");
        let (_, metadata) = records::parse_group_metadata(&key, &store.value)
            .expect("a group metadata record")
            .expect("of key v2");
        assert_eq!(
            (metadata.generation, metadata.leader.as_deref()),
            (2, Some("a"))
        );
        let assigned: Vec<(&str, &[u8])> = metadata
            .members
            .iter()
            .map(|m| (m.member_id.as_str(), &m.assignment[..]))
            .collect();
        assert_eq!(assigned, vec![("a", &b"p0"[..]), ("b", &b"p1"[..])]);
        group.assignment_stored(store, 0, t0);
        assert_eq!(group.state, GroupState::Stable);
        assert_eq!(
            a_sync.try_recv().expect("a").assignment,
            Bytes::from_static(b"p0")
        );
        assert_eq!(
            b_sync.try_recv().expect("b").assignment,
            Bytes::from_static(b"p1")
        );
    }

    #[test]
    fn a_failed_store_fails_every_sync_and_rebalances() {
        let t0 = Instant::now();
        let mut group = joined_pair(t0);
        let (b_sync, _) = group.sync("b", None, 2, vec![], t0);
        let mut b_sync = later(b_sync);
        let (a_sync, store) = group.sync("a", None, 2, p0_p1(), t0);
        let mut a_sync = later(a_sync);
        let not_coordinator = ResponseError::NotCoordinator.code();
        group.assignment_stored(store.expect("to store"), not_coordinator, t0);
        assert_eq!(a_sync.try_recv().expect("a").error_code, not_coordinator);
        assert_eq!(b_sync.try_recv().expect("b").error_code, not_coordinator);
        assert_eq!(group.state, GroupState::PreparingRebalance);
    }

    #[test]
    fn a_store_the_group_moved_past_is_ignored() {
        let t0 = Instant::now();
        let mut group = joined_pair(t0);
        let (a_sync, store) = group.sync("a", None, 2, p0_p1(), t0);
        let mut a_sync = later(a_sync);
        // b leaves while the assignment is being written: a new rebalance.
        assert_eq!(group.leave("b", None, t0), 0);
        assert_eq!(
            a_sync.try_recv().expect("told").error_code,
            ResponseError::RebalanceInProgress.code()
        );
        let generation = group.generation_id;
        group.assignment_stored(store.expect("to store"), 0, t0);
        assert_ne!(group.state, GroupState::Stable);
        assert_eq!(group.generation_id, generation);
        assert!(group.members["a"].assignment.is_empty());
    }

    fn static_request(member_id: &str, instance: &str) -> JoinRequest {
        JoinRequest {
            group_instance_id: Some(instance.into()),
            ..request(member_id)
        }
    }

    /// Two static members reach a stable generation: a joins first and leads.
    fn stable_static_pair(t0: Instant) -> Group {
        let mut group = Group::new("g");
        // A static member joins without the MEMBER_ID_REQUIRED round.
        let mut a_join =
            later(group.join(static_request("", "ia"), || "a".into(), Duration::ZERO, t0));
        a_join.try_recv().expect("a alone");
        drop(later(sync_stored(
            &mut group,
            "a",
            Some("ia"),
            1,
            vec![],
            t0,
        )));
        let mut b_join =
            later(group.join(static_request("", "ib"), || "b".into(), Duration::ZERO, t0));
        let mut a_join = later(group.join(
            static_request("a", "ia"),
            || unreachable!(),
            Duration::ZERO,
            t0,
        ));
        assert_eq!(a_join.try_recv().expect("a").generation_id, 2);
        assert_eq!(b_join.try_recv().expect("b").generation_id, 2);
        let mut b_sync = later(sync_stored(&mut group, "b", Some("ib"), 2, vec![], t0));
        let assignment = vec![
            ("a".into(), Bytes::from_static(b"p0")),
            ("b".into(), Bytes::from_static(b"p1")),
        ];
        drop(later(sync_stored(
            &mut group,
            "a",
            Some("ia"),
            2,
            assignment,
            t0,
        )));
        assert_eq!(
            b_sync.try_recv().expect("b").assignment,
            Bytes::from_static(b"p1")
        );
        assert_eq!(group.state, GroupState::Stable);
        group
    }

    #[test]
    fn a_restarted_static_member_gets_its_assignment_back_without_a_rebalance() {
        let t0 = Instant::now();
        let mut group = stable_static_pair(t0);
        // b restarts: a new process, the same instance id, no member id.
        let b2 =
            now_outcome(group.join(static_request("", "ib"), || "b2".into(), Duration::ZERO, t0));
        assert_eq!(b2.error_code, 0);
        assert_eq!((b2.generation_id, b2.member_id.as_str()), (2, "b2"));
        assert_eq!(b2.leader, "a", "b2 syncs as a follower");
        assert_eq!(group.state, GroupState::Stable, "no rebalance");
        let synced = now_outcome(sync_stored(&mut group, "b2", Some("ib"), 2, vec![], t0));
        assert_eq!(
            (synced.error_code, synced.assignment),
            (0, Bytes::from_static(b"p1"))
        );
        assert_eq!(
            group.heartbeat("a", Some("ia"), 2, t0),
            0,
            "a sees no rebalance"
        );
        // The old instance is fenced wherever it shows up.
        let fenced = ResponseError::FencedInstanceId.code();
        assert_eq!(group.heartbeat("b", Some("ib"), 2, t0), fenced);
        assert_eq!(
            now_outcome(sync_stored(&mut group, "b", Some("ib"), 2, vec![], t0)).error_code,
            fenced
        );
        assert_eq!(group.check_commit("b", Some("ib"), 2, t0), fenced);
        let rejoin = group.join(
            static_request("b", "ib"),
            || unreachable!(),
            Duration::ZERO,
            t0,
        );
        assert_eq!(now_outcome(rejoin).error_code, fenced);
        assert_eq!(group.leave("b", Some("ib"), t0), fenced);
        assert_eq!(group.state, GroupState::Stable);
        // The leader restarts: it comes back as a follower of its own old id, still no rebalance.
        let a2 =
            now_outcome(group.join(static_request("", "ia"), || "a2".into(), Duration::ZERO, t0));
        assert_eq!(
            (a2.member_id.as_str(), a2.leader.as_str(), a2.members.len()),
            ("a2", "a", 0)
        );
        assert_eq!(group.leader.as_deref(), Some("a2"));
        let synced = now_outcome(sync_stored(&mut group, "a2", Some("ia"), 2, vec![], t0));
        assert_eq!(synced.assignment, Bytes::from_static(b"p0"));
    }

    #[test]
    fn a_static_member_leaves_by_instance_id_and_expires_with_its_session() {
        let t0 = Instant::now();
        let mut group = stable_static_pair(t0);
        assert_eq!(
            group.leave("", Some("nobody"), t0),
            ResponseError::UnknownMemberId.code()
        );
        // Removal by instance id alone (an admin's LeaveGroup v3+): a rebalance without b.
        assert_eq!(group.leave("", Some("ib"), t0), 0);
        assert!(group.static_member_id("ib").is_none());
        assert_eq!(group.state, GroupState::PreparingRebalance);
        let mut a_join = later(group.join(
            static_request("a", "ia"),
            || unreachable!(),
            Duration::ZERO,
            t0,
        ));
        assert_eq!(a_join.try_recv().expect("a alone").generation_id, 3);
        drop(later(sync_stored(
            &mut group,
            "a",
            Some("ia"),
            3,
            vec![],
            t0,
        )));
        // A static member that stops heartbeating is removed when its session expires.
        group.tick(t0 + Duration::from_millis(999));
        assert!(group.static_member_id("ia").is_some());
        group.tick(t0 + Duration::from_millis(1000));
        assert!(group.static_member_id("ia").is_none());
    }

    #[test]
    fn inconsistent_protocols_are_refused() {
        let t0 = Instant::now();
        let mut group = Group::new("g");
        let _ = group.join(request(""), || "a".into(), Duration::ZERO, t0);
        let _ = group.join(request("a"), || unreachable!(), Duration::ZERO, t0);
        let mut other = request("");
        other.protocols = vec![("roundrobin".into(), Bytes::new())];
        let refused = now_outcome(group.join(other, || "x".into(), Duration::ZERO, t0));
        assert_eq!(
            refused.error_code,
            ResponseError::InconsistentGroupProtocol.code()
        );
    }
}
