# A member of the rmi chat (the chat_server example) written in Python on Pyro5, as the Rust
# chat_client is: it joins a room as NICK, sends each line it reads to the others, and prints
# what they say as `[NAME] TEXT`. Its Member object lives in its own Pyro5 daemon and is
# passed to join() as itself: Pyro5 sends it as a proxy (its autoproxy), which the rmi server
# calls back. The seat join() returns arrives as a Pyro5 proxy too.
#
# Usage: chat_member.py NICK [ROOM], with PYRO_NS_HOST and PYRO_NS_PORT naming rmi-ns.
import sys
import threading

import Pyro5.api

nick = sys.argv[1]
room = sys.argv[2] if len(sys.argv) > 2 else "lobby"


@Pyro5.api.expose
class Member(object):
    def hear(self, sender, text):
        print("[%s] %s" % (sender, text), flush=True)

    def notice(self, text):
        print("* %s" % text, flush=True)


daemon = Pyro5.api.Daemon(host="127.0.0.1")
member = Member()
daemon.register(member)
threading.Thread(target=daemon.requestLoop, daemon=True).start()

chat = Pyro5.api.Proxy("PYRONAME:chat")
seat = chat.join(room, nick, member)
print("Joined %s as %s; members: %s" % (room, nick, ", ".join(chat.members(room))), flush=True)
for line in sys.stdin:
    line = line.rstrip("\n")
    if line:
        seat.say(line)
seat.leave()
daemon.shutdown()
