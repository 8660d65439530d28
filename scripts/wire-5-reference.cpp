// Reference builder for test/fixtures/wire-5, run by scripts/wire-5-fixtures.mjs.
//
// `build` reads one session from stdin (the line format below) and writes
// the Message{FullSession} that the Wazuh agent would send for it: the C++
// FlatBufferBuilder is driven with the same calls, in the same order, as
// AgentSyncProtocol::waitMetadataAndBuildStart and ::buildFullSessionMessage
// in wazuh/wazuh src/shared_modules/sync_protocol/src/agent_sync_protocol.cpp
// at commit f838614611 (this file is written from reading them, not copied).
//
// `verify` reads buffers from stdin, each as a u32 LE length and the bytes,
// and prints a line for each: "1 <content type>" when the C++ verifier that
// the manager runs first (VerifyMessageBuffer, default options) accepts it,
// else "0".
//
// Input lines, tab-separated; strings and bytes in hex (empty = empty):
//   S <start string field> <hex>   module, architecture, ..., cluster_name
//   N mode|option <decimal>
//   L index|groups <hex>           one list element, in order
//   U global_version|feed_offset <decimal>
//   V <operation> <id> <index> <version> <data>
//   C <id> <index> <data>          a DataContext
//   D <index>                      a DataClean
//   K <index> <checksum>           the ChecksumModule
#include "fullSession_generated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fb = Wazuh::SyncSchema;

namespace
{
    struct Value
    {
        int operation {0};
        std::string id, index;
        uint64_t version {0};
        std::string data;
    };

    struct Session
    {
        std::map<std::string, std::string> strings;
        int mode {0};
        int option {0};
        std::vector<std::string> index, groups;
        std::optional<uint64_t> globalVersion, feedOffset;
        std::vector<Value> values, contexts;
        std::vector<std::string> cleans;
        std::optional<std::pair<std::string, std::string>> checksum;
    };

    std::string unhex(const std::string& hex)
    {
        std::string out;
        for (size_t i = 0; i + 1 < hex.size(); i += 2)
        {
            out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
        }
        return out;
    }

    std::vector<std::string> split(const std::string& line)
    {
        std::vector<std::string> fields;
        std::string field;
        std::istringstream in(line);
        while (std::getline(in, field, '\t'))
        {
            fields.push_back(field);
        }
        if (!line.empty() && line.back() == '\t')
        {
            fields.emplace_back();
        }
        return fields;
    }

    Session parse(std::istream& in)
    {
        Session s;
        std::string line;
        while (std::getline(in, line))
        {
            if (line.empty())
            {
                continue;
            }
            auto f = split(line);
            f.resize(6);
            const auto& kind = f[0];
            if (kind == "S") s.strings[f[1]] = unhex(f[2]);
            else if (kind == "N") (f[1] == "mode" ? s.mode : s.option) = std::stoi(f[2]);
            else if (kind == "L") (f[1] == "index" ? s.index : s.groups).push_back(unhex(f[2]));
            else if (kind == "U") (f[1] == "global_version" ? s.globalVersion : s.feedOffset) = std::stoull(f[2]);
            else if (kind == "V") s.values.push_back({std::stoi(f[1]), unhex(f[2]), unhex(f[3]), std::stoull(f[4]), unhex(f[5])});
            else if (kind == "C") s.contexts.push_back({0, unhex(f[1]), unhex(f[2]), 0, unhex(f[3])});
            else if (kind == "D") s.cleans.push_back(unhex(f[1]));
            else if (kind == "K") s.checksum = std::make_pair(unhex(f[1]), unhex(f[2]));
            else throw std::runtime_error("bad line: " + line);
        }
        return s;
    }

    flatbuffers::Offset<flatbuffers::Vector<int8_t>> bytes(flatbuffers::FlatBufferBuilder& b, const std::string& data)
    {
        return b.CreateVector(reinterpret_cast<const int8_t*>(data.data()), data.size());
    }

    int build(std::istream& in)
    {
        auto s = parse(in);
        auto str = [&](const char* name) { return s.strings[name]; };
        flatbuffers::FlatBufferBuilder b;

        // Start: the module name first, then the group strings, the other
        // metadata strings, the groups vector, the index strings and vector.
        auto module = b.CreateString(str("module"));
        std::vector<flatbuffers::Offset<flatbuffers::String>> groupOffsets;
        for (const auto& g : s.groups) groupOffsets.push_back(b.CreateString(g));
        auto architecture = b.CreateString(str("architecture"));
        auto hostname = b.CreateString(str("hostname"));
        auto osname = b.CreateString(str("osname"));
        auto ostype = b.CreateString(str("ostype"));
        auto osplatform = b.CreateString(str("osplatform"));
        auto osversion = b.CreateString(str("osversion"));
        auto agentversion = b.CreateString(str("agentversion"));
        auto agentname = b.CreateString(str("agentname"));
        auto agentid = b.CreateString(str("agentid"));
        auto clusterName = b.CreateString(str("cluster_name"));
        auto groups = b.CreateVector(groupOffsets);
        std::vector<flatbuffers::Offset<flatbuffers::String>> indexOffsets;
        for (const auto& i : s.index) indexOffsets.push_back(b.CreateString(i));
        auto index = b.CreateVector(indexOffsets);

        fb::StartBuilder sb(b);
        sb.add_module_(module);
        sb.add_mode(static_cast<fb::Mode>(s.mode));
        sb.add_index(index);
        sb.add_option(static_cast<fb::Option>(s.option));
        sb.add_architecture(architecture);
        sb.add_hostname(hostname);
        sb.add_osname(osname);
        sb.add_osplatform(osplatform);
        sb.add_ostype(ostype);
        sb.add_osversion(osversion);
        sb.add_agentversion(agentversion);
        sb.add_agentname(agentname);
        sb.add_agentid(agentid);
        sb.add_groups(groups);
        sb.add_cluster_name(clusterName);
        if (s.globalVersion) sb.add_global_version(*s.globalVersion);
        // The reference gates feed_offset on the option, not on a value.
        if (s.option == fb::Option_VDFirst || s.option == fb::Option_VDSync) sb.add_feed_offset(s.feedOffset.value_or(0));
        auto start = sb.Finish();

        std::vector<flatbuffers::Offset<fb::DataValue>> values;
        for (const auto& v : s.values)
        {
            auto id = b.CreateString(v.id);
            auto idx = b.CreateString(v.index);
            auto data = bytes(b, v.data);
            fb::DataValueBuilder vb(b);
            vb.add_id(id);
            vb.add_index(idx);
            vb.add_version(v.version);
            vb.add_operation(static_cast<fb::Operation>(v.operation));
            vb.add_data(data);
            values.push_back(vb.Finish());
        }
        std::vector<flatbuffers::Offset<fb::DataContext>> contexts;
        for (const auto& c : s.contexts)
        {
            auto id = b.CreateString(c.id);
            auto idx = b.CreateString(c.index);
            auto data = bytes(b, c.data);
            fb::DataContextBuilder cb(b);
            cb.add_id(id);
            cb.add_index(idx);
            cb.add_data(data);
            contexts.push_back(cb.Finish());
        }
        std::vector<flatbuffers::Offset<fb::DataClean>> cleans;
        for (const auto& c : s.cleans)
        {
            auto idx = b.CreateString(c);
            fb::DataCleanBuilder db(b);
            db.add_index(idx);
            cleans.push_back(db.Finish());
        }
        flatbuffers::Offset<fb::ChecksumModule> checksum;
        if (s.checksum)
        {
            auto idx = b.CreateString(s.checksum->first);
            auto sum = b.CreateString(s.checksum->second);
            fb::ChecksumModuleBuilder kb(b);
            kb.add_index(idx);
            kb.add_checksum(sum);
            checksum = kb.Finish();
        }

        // Cleans win over a checksum, which wins over data, as in the reference.
        auto payloadType = fb::SessionPayload_NONE;
        flatbuffers::Offset<void> payload;
        if (!cleans.empty())
        {
            auto items = b.CreateVector(cleans);
            fb::CleansBuilder cb(b);
            cb.add_items(items);
            payload = cb.Finish().Union();
            payloadType = fb::SessionPayload_Cleans;
        }
        else if (s.checksum)
        {
            payload = checksum.Union();
            payloadType = fb::SessionPayload_ChecksumModule;
        }
        else if (!values.empty() || !contexts.empty())
        {
            auto valuesVector = b.CreateVector(values);
            auto contextsVector = b.CreateVector(contexts);
            fb::SyncDataBuilder db(b);
            db.add_values(valuesVector);
            db.add_contexts(contextsVector);
            payload = db.Finish().Union();
            payloadType = fb::SessionPayload_SyncData;
        }

        fb::FullSessionBuilder fsb(b);
        fsb.add_start(start);
        if (payloadType != fb::SessionPayload_NONE)
        {
            fsb.add_payload_type(payloadType);
            fsb.add_payload(payload);
        }
        auto session = fsb.Finish();
        b.Finish(fb::CreateMessage(b, fb::MessageType_FullSession, session.Union()));
        std::fwrite(b.GetBufferPointer(), 1, b.GetSize(), stdout);
        return 0;
    }

    int verify(std::istream& in)
    {
        std::string body;
        unsigned char header[4];
        while (in.read(reinterpret_cast<char*>(header), 4))
        {
            const uint32_t size = header[0] | (header[1] << 8) | (header[2] << 16) | (uint32_t(header[3]) << 24);
            body.resize(size);
            in.read(body.data(), size);
            // A copy with exactly the body's size, so reads past it are caught by tools.
            std::vector<uint8_t> copy(body.begin(), body.end());
            flatbuffers::Verifier verifier(copy.data(), copy.size());
            if (fb::VerifyMessageBuffer(verifier))
            {
                std::cout << "1 " << static_cast<int>(fb::GetMessage(copy.data())->content_type()) << "\n";
            }
            else
            {
                std::cout << "0\n";
            }
        }
        return 0;
    }
} // namespace

int main(int argc, char** argv)
{
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "build") return build(std::cin);
    if (command == "verify") return verify(std::cin);
    std::cerr << "usage: wire-5-reference build|verify < input\n";
    return 2;
}
