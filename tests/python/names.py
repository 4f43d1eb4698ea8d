# Pyro5's name server interface, against rmi-ns: every call Pyro5's `NameServer` offers,
# with Pyro5's semantics. Usage: names.py HOST PORT
import sys
import Pyro5.api
import Pyro5.errors

host, port = sys.argv[1], int(sys.argv[2])
ns = Pyro5.api.locate_ns(host, port)
ns.ping()
print("lookup", ns.lookup("server").object.startswith("obj_"), ns.lookup("server").protocol)
greeter = Pyro5.api.Proxy("PYRONAME:server@%s:%d" % (host, port))
print("PYRONAME", greeter.welcomeMessage("Ruvika"))
ns.register("python.thing", "PYRO:obj_abc@127.0.0.1:5555", metadata={"a", "b"})
uri, meta = ns.lookup("python.thing", return_metadata=True)
print("registered", uri, sorted(meta))
print("list", sorted(ns.list().keys()))
print("prefix", ns.list(prefix="python."))
print("yplookup", ns.yplookup(meta_all=["a", "b"], return_metadata=False))
ns.set_metadata("python.thing", {"c"})
print("set_metadata", ns.yplookup(meta_any=["c"]))
try:
    ns.register("python.thing", "PYRO:obj_other@127.0.0.1:5555", safe=True)
except Pyro5.errors.NamingError as e:
    print("safe NamingError")
print("count", ns.count())
print("self", ns.lookup("Pyro.NameServer"))
try:
    ns.lookup("nobody")
except Pyro5.errors.NamingError as e:
    print("NamingError", e)
print("remove", ns.remove("python.thing"), ns.remove("python.thing"), ns.count())
