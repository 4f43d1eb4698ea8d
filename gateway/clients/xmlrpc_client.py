#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# The Rosetta Code "Distributed programming" XML-RPC client, in Python 3 (`xmlrpc.client`
# for Python 2's `xmlrpclib`), pointed at rmi-gateway instead of SimpleXMLRPCServer:
#
#   python3 xmlrpc_client.py [URL]      (default http://127.0.0.1:8080/RPC2/handler)
#
# The URL names the object (`/RPC2/handler`) so that its methods are called by their own
# names, as Rosetta Code's "Distributed programming" XML-RPC client calls them. A second argument is sent as a bearer token.
import sys
import xmlrpc.client

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/RPC2/handler"
headers = [("Authorization", "Bearer " + sys.argv[2])] if len(sys.argv) > 2 else []
rpc = xmlrpc.client.ServerProxy(URL, headers=headers)
# print what functions does server support
print('Server supports these functions:', end=' ')
print(' '.join(rpc.system.listMethods()))
# echo something
print(rpc.echo("We sent this data to server"))
# div numbers
print('Server says: 8 / 4 is: %d' % rpc.div(8, 4))
# control if foo_function returns True
if rpc.foo_function():
    print('Server says: foo_function returned True')
