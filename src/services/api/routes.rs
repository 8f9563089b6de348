//! The API's routes: a method and path in, a typed [`Route`] (with its
//! path parameters parsed) or the 404/405 to answer. Pure.

/// Every API route served by the services layer. (`/api/health`,
/// `/api/cert-hash` and `/api/stats` are the shard's own, in
/// `reactor::web`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ready,
    OpenApi,
    Register,
    Login,
    Guest,
    Upgrade,
    Refresh,
    Logout,
    Me,
    UpdateMe,
    Player(i64),
    PlayerStats(i64),
    /// A player's match history (a page of it).
    PlayerMatches(i64),
    /// One recorded match.
    Match(i64),
    /// A match's stored events and key moments.
    MatchReplay(i64),
    /// A solo run's result, reported by the player who ran it.
    SoloResult,
    Leaderboard(String),
    /// The public rooms, from the shard's copy of the room directory.
    Rooms,
    Room(u64),
    /// Rooms and the quick-match queue: the shard's game host answers.
    CreateRoom,
    JoinRoom(u64),
    LeaveRoom(u64),
    QueueJoin,
    QueueLeave,
    QueueStatus,
}

/// Why a method and path name no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    /// The path exists; `allow` lists its methods.
    MethodNotAllowed {
        allow: &'static str,
    },
}

/// Longest game name in a leaderboard path.
pub const GAME_NAME_LEN_MAX: usize = 32;

/// Resolves `method path` (path without the query). HEAD is GET without
/// the body.
pub fn resolve(method: &str, path: &str) -> Result<Route, RouteError> {
    let Some(rest) = path.strip_prefix("/api/") else { return Err(RouteError::NotFound) };
    let segments: arrayvec::ArrayVec<&str, 4> = {
        let mut segments = arrayvec::ArrayVec::new();
        for segment in rest.split('/') {
            segments.try_push(segment).map_err(|_| RouteError::NotFound)?;
        }
        segments
    };
    let read = method == "GET" || method == "HEAD";
    let post = method == "POST";
    let (route, allowed, allow) = match segments.as_slice() {
        ["ready"] => (Route::Ready, read, "GET, HEAD"),
        ["openapi.json"] => (Route::OpenApi, read, "GET, HEAD"),
        ["auth", action] => {
            let route = match *action {
                "register" => Route::Register,
                "login" => Route::Login,
                "guest" => Route::Guest,
                "upgrade" => Route::Upgrade,
                "refresh" => Route::Refresh,
                "logout" => Route::Logout,
                _ => return Err(RouteError::NotFound),
            };
            (route, post, "POST")
        }
        ["players", "me"] => match method {
            "PUT" => (Route::UpdateMe, true, ""),
            _ => (Route::Me, read, "GET, HEAD, PUT"),
        },
        ["players", id] => (Route::Player(decimal_id(id)?), read, "GET, HEAD"),
        ["players", id, "stats"] => (Route::PlayerStats(decimal_id(id)?), read, "GET, HEAD"),
        ["players", id, "matches"] => (Route::PlayerMatches(decimal_id(id)?), read, "GET, HEAD"),
        ["matches", id] => (Route::Match(decimal_id(id)?), read, "GET, HEAD"),
        ["matches", id, "replay"] => (Route::MatchReplay(decimal_id(id)?), read, "GET, HEAD"),
        ["solo_results"] => (Route::SoloResult, post, "POST"),
        ["leaderboards", game] => (Route::Leaderboard(game_name(game)?), read, "GET, HEAD"),
        ["rooms"] => match method {
            "POST" => (Route::CreateRoom, true, ""),
            _ => (Route::Rooms, read, "GET, HEAD, POST"),
        },
        ["rooms", id] => (Route::Room(room_id(id)?), read, "GET, HEAD"),
        ["rooms", id, "join"] => (Route::JoinRoom(room_id(id)?), post, "POST"),
        ["rooms", id, "leave"] => (Route::LeaveRoom(room_id(id)?), post, "POST"),
        ["match", "queue"] => match method {
            "POST" => (Route::QueueJoin, true, ""),
            _ => (Route::QueueLeave, method == "DELETE", "POST, DELETE"),
        },
        ["match", "status"] => (Route::QueueStatus, read, "GET, HEAD"),
        _ => return Err(RouteError::NotFound),
    };
    if allowed {
        Ok(route)
    } else {
        Err(RouteError::MethodNotAllowed { allow })
    }
}

/// Account and match ids in paths are decimal (as the JSON strings carry
/// them) and positive.
fn decimal_id(segment: &str) -> Result<i64, RouteError> {
    let valid = !segment.is_empty()
        && segment.len() <= 19
        && segment.bytes().all(|byte| byte.is_ascii_digit());
    match valid.then(|| segment.parse::<i64>()) {
        Some(Ok(id)) if id > 0 => Ok(id),
        _ => Err(RouteError::NotFound),
    }
}

/// Room ids in paths are decimal, as the JSON strings carry them.
fn room_id(segment: &str) -> Result<u64, RouteError> {
    let valid = !segment.is_empty()
        && segment.len() <= 20
        && segment.bytes().all(|byte| byte.is_ascii_digit());
    match valid.then(|| segment.parse::<u64>()) {
        Some(Ok(id)) if id > 0 => Ok(id),
        _ => Err(RouteError::NotFound),
    }
}

fn game_name(segment: &str) -> Result<String, RouteError> {
    let valid = !segment.is_empty()
        && segment.len() <= GAME_NAME_LEN_MAX
        && segment.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_');
    if valid {
        Ok(segment.to_owned())
    } else {
        Err(RouteError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve_with_their_parameters() {
        assert_eq!(resolve("POST", "/api/auth/login"), Ok(Route::Login));
        assert_eq!(resolve("GET", "/api/players/me"), Ok(Route::Me));
        assert_eq!(resolve("PUT", "/api/players/me"), Ok(Route::UpdateMe));
        assert_eq!(
            resolve("GET", "/api/players/4611686018427387905"),
            Ok(Route::Player(4611686018427387905))
        );
        assert_eq!(resolve("HEAD", "/api/players/12/stats"), Ok(Route::PlayerStats(12)));
        assert_eq!(resolve("GET", "/api/players/12/matches"), Ok(Route::PlayerMatches(12)));
        assert_eq!(
            resolve("GET", "/api/matches/1782580162232352768"),
            Ok(Route::Match(1782580162232352768))
        );
        assert_eq!(resolve("POST", "/api/solo_results"), Ok(Route::SoloResult));
        assert_eq!(
            resolve("GET", "/api/solo_results"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            resolve("POST", "/api/matches/5"),
            Err(RouteError::MethodNotAllowed { allow: "GET, HEAD" })
        );
        assert_eq!(
            resolve("GET", "/api/leaderboards/tetris"),
            Ok(Route::Leaderboard("tetris".into()))
        );
        assert_eq!(resolve("GET", "/api/ready"), Ok(Route::Ready));
        assert_eq!(resolve("GET", "/api/rooms"), Ok(Route::Rooms));
        assert_eq!(resolve("GET", "/api/rooms/281474976710657"), Ok(Route::Room(1 << 48 | 1)));
        assert_eq!(resolve("POST", "/api/rooms"), Ok(Route::CreateRoom));
        assert_eq!(
            resolve("DELETE", "/api/rooms"),
            Err(RouteError::MethodNotAllowed { allow: "GET, HEAD, POST" })
        );
        assert_eq!(resolve("POST", "/api/rooms/5/join"), Ok(Route::JoinRoom(5)));
        assert_eq!(resolve("POST", "/api/rooms/5/leave"), Ok(Route::LeaveRoom(5)));
        assert_eq!(
            resolve("GET", "/api/rooms/5/join"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(resolve("POST", "/api/match/queue"), Ok(Route::QueueJoin));
        assert_eq!(resolve("DELETE", "/api/match/queue"), Ok(Route::QueueLeave));
        assert_eq!(
            resolve("GET", "/api/match/queue"),
            Err(RouteError::MethodNotAllowed { allow: "POST, DELETE" })
        );
        assert_eq!(resolve("GET", "/api/match/status"), Ok(Route::QueueStatus));
        assert_eq!(resolve("POST", "/api/rooms/x/join"), Err(RouteError::NotFound));
    }

    #[test]
    fn wrong_methods_and_paths_are_refused() {
        assert_eq!(
            resolve("GET", "/api/auth/login"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            resolve("DELETE", "/api/players/me"),
            Err(RouteError::MethodNotAllowed { allow: "GET, HEAD, PUT" })
        );
        for path in [
            "/api/players/0",
            "/api/players/-1",
            "/api/players/99999999999999999999",
            "/api/players/1e9",
            "/api/players/1/stats/x",
            "/api/matches/0",
            "/api/matches/9223372036854775808",
            "/api/matches",
            "/api/players/x/matches",
            "/api/leaderboards/Tetris",
            "/api/leaderboards/../etc",
            "/api/auth/root",
            "/api/a/b/c/d/e",
            "/api/",
            "/other",
        ] {
            assert_eq!(resolve("GET", path), Err(RouteError::NotFound), "{path}");
        }
    }
}
