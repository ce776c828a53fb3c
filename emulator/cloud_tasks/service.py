"""The ``google.cloud.tasks.v2.CloudTasks`` gRPC service over ``Emulator``.

No generated stubs: the google-cloud-tasks GAPIC client calls method paths such
as ``/google.cloud.tasks.v2.CloudTasks/CreateTask`` with proto-plus
serializers, so a generic handler using the same types' ``deserialize`` and
``serialize`` speaks the real wire API. Implemented: CreateQueue, GetQueue,
ListQueues, PurgeQueue, PauseQueue, ResumeQueue, CreateTask, GetTask,
ListTasks, DeleteTask; other methods answer UNIMPLEMENTED.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any, TypeVar

import grpc
from google.cloud import tasks_v2
from google.protobuf import empty_pb2

from emulator.cloud_tasks.config import QueueConfig
from emulator.cloud_tasks.queues import ApiError, Emulator

log = logging.getLogger("emulator.cloud_tasks")

SERVICE = "google.cloud.tasks.v2.CloudTasks"
_MAX_PAGE = 1000
T = TypeVar("T")


def _page(items: Sequence[T], size: int, token: str) -> tuple[Sequence[T], str]:
    """One page of ``items`` and the token of the next ("" at the end); tokens are offsets."""
    try:
        start = int(token or 0)
    except ValueError:
        raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token") from None
    end = start + min(size or _MAX_PAGE, _MAX_PAGE)
    return items[start:end], (str(end) if end < len(items) else "")


class CloudTasksService:
    """One method per RPC; each runs under the emulator's lock."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def create_queue(self, request: tasks_v2.CreateQueueRequest) -> tasks_v2.Queue:
        name = request.queue.name
        if not name.startswith(f"{request.parent}/queues/") or "/" in name.rsplit("/queues/", 1)[1]:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"queue name must be {request.parent}/queues/QUEUE_ID")
        try:
            config = QueueConfig.from_queue(request.queue)
            config.validate()
        except ValueError as exc:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        paused = request.queue.state == tasks_v2.Queue.State.PAUSED
        return self.emulator.create_queue(name, config, paused).proto()

    def get_queue(self, request: tasks_v2.GetQueueRequest) -> tasks_v2.Queue:
        return self.emulator.queue(request.name).proto()

    def list_queues(self, request: tasks_v2.ListQueuesRequest) -> tasks_v2.ListQueuesResponse:
        queues, token = _page(self.emulator.queues(request.parent), request.page_size, request.page_token)
        return tasks_v2.ListQueuesResponse(queues=[q.proto() for q in queues], next_page_token=token)

    def purge_queue(self, request: tasks_v2.PurgeQueueRequest) -> tasks_v2.Queue:
        queue = self.emulator.queue(request.name)
        queue.purge()
        return queue.proto()

    def pause_queue(self, request: tasks_v2.PauseQueueRequest) -> tasks_v2.Queue:
        queue = self.emulator.queue(request.name)
        queue.set_paused(True)
        return queue.proto()

    def resume_queue(self, request: tasks_v2.ResumeQueueRequest) -> tasks_v2.Queue:
        queue = self.emulator.queue(request.name)
        queue.set_paused(False)
        return queue.proto()

    def create_task(self, request: tasks_v2.CreateTaskRequest) -> tasks_v2.Task:
        queue = self.emulator.queue(request.parent)
        return queue.view(queue.create_task(request.task), request.response_view)

    def get_task(self, request: tasks_v2.GetTaskRequest) -> tasks_v2.Task:
        queue = self.emulator.queue(request.name.rsplit("/tasks/", 1)[0])
        return queue.view(queue.task(request.name), request.response_view)

    def list_tasks(self, request: tasks_v2.ListTasksRequest) -> tasks_v2.ListTasksResponse:
        queue = self.emulator.queue(request.parent)
        entries, token = _page(queue.tasks(), request.page_size, request.page_token)
        tasks = [queue.view(entry, request.response_view) for entry in entries]
        return tasks_v2.ListTasksResponse(tasks=tasks, next_page_token=token)

    def delete_task(self, request: tasks_v2.DeleteTaskRequest) -> empty_pb2.Empty:
        self.emulator.queue(request.name.rsplit("/tasks/", 1)[0]).delete_task(request.name)
        return empty_pb2.Empty()

    # ------------------------------------------------------------------ wiring

    def handler(self) -> grpc.GenericRpcHandler:
        methods: dict[str, tuple[Callable[[Any], Any], Any, Callable[[Any], bytes]]] = {
            "CreateQueue": (self.create_queue, tasks_v2.CreateQueueRequest, tasks_v2.Queue.serialize),
            "GetQueue": (self.get_queue, tasks_v2.GetQueueRequest, tasks_v2.Queue.serialize),
            "ListQueues": (self.list_queues, tasks_v2.ListQueuesRequest, tasks_v2.ListQueuesResponse.serialize),
            "PurgeQueue": (self.purge_queue, tasks_v2.PurgeQueueRequest, tasks_v2.Queue.serialize),
            "PauseQueue": (self.pause_queue, tasks_v2.PauseQueueRequest, tasks_v2.Queue.serialize),
            "ResumeQueue": (self.resume_queue, tasks_v2.ResumeQueueRequest, tasks_v2.Queue.serialize),
            "CreateTask": (self.create_task, tasks_v2.CreateTaskRequest, tasks_v2.Task.serialize),
            "GetTask": (self.get_task, tasks_v2.GetTaskRequest, tasks_v2.Task.serialize),
            "ListTasks": (self.list_tasks, tasks_v2.ListTasksRequest, tasks_v2.ListTasksResponse.serialize),
            "DeleteTask": (self.delete_task, tasks_v2.DeleteTaskRequest, empty_pb2.Empty.SerializeToString),
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                method: grpc.unary_unary_rpc_method_handler(
                    self._guarded(function),
                    request_deserializer=request_type.deserialize,
                    response_serializer=serialize,
                )
                for method, (function, request_type, serialize) in methods.items()
            },
        )

    def _guarded(self, function: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                with self.emulator.lock:
                    return function(request)
            except ApiError as exc:
                context.abort(exc.code, exc.message)

        return call


def serve(emulator: Emulator, host: str, port: int, threads: int = 16) -> grpc.Server:
    """A started gRPC server on ``host:port`` (RuntimeError if the port cannot be bound)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"))
    server.add_generic_rpc_handlers((CloudTasksService(emulator).handler(),))
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise RuntimeError(f"cannot listen on {host}:{port}")
    server.start()
    return server
